// POST /v1/completions through the official openai client: greedy and seeded outputs equal `tfm generate`'s,
// usage counts, echo, n, logprobs, stop strings and finish reasons, and token-id prompts.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  LM, client, cliContinuation, lmConfig, lmScores, limited, postJson,
} from './lib/harness.mjs';

const openai = client();
const scores = lmScores().greedy;
const eos = lmConfig().eos_token_id;

// The CLI's greedy 40-token continuation of each scores.json prompt.
const cliGreedy = new Map();

before(async () => {
  const texts = await limited(scores.map((s) => () => cliContinuation(s.prompt, ['--greedy', '--max-new-tokens', '40'])), 2);
  scores.forEach((s, i) => cliGreedy.set(s.prompt, texts[i]));
});

describe('greedy completions equal tfm generate --greedy', () => {
  for (const [i, s] of scores.entries()) {
    test(`prompt ${i}: ${JSON.stringify(s.prompt)}`, async () => {
      const r = await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 40, temperature: 0 });
      assert.equal(r.object, 'text_completion');
      assert.equal(r.model, LM);
      assert.equal(typeof r.id, 'string');
      assert.equal(typeof r.created, 'number');
      assert.equal(r.choices.length, 1);
      const c = r.choices[0];
      assert.equal(c.index, 0);
      assert.equal(c.text, cliGreedy.get(s.prompt), 'the completion differs from tfm generate --greedy --max-new-tokens 40');

      // scores.json: greedy_ids = prompt_ids + up to 40 greedy tokens, EOS included when it came.
      const generated = s.greedy_ids.length - s.prompt_ids.length;
      const endedAtEos = s.greedy_ids.at(-1) === eos;
      assert.equal(r.usage.prompt_tokens, s.prompt_ids.length, 'usage.prompt_tokens');
      if (endedAtEos) {
        assert.equal(c.finish_reason, 'stop', 'the model emitted EOS: finish_reason');
        // Either convention: the EOS token counted (vLLM) or not (llama-server).
        assert.ok([generated, generated - 1].includes(r.usage.completion_tokens),
          `usage.completion_tokens ${r.usage.completion_tokens}, expected ${generated} (EOS counted) or ${generated - 1}`);
      } else {
        assert.equal(c.finish_reason, 'length');
        assert.equal(r.usage.completion_tokens, 40, 'usage.completion_tokens');
      }
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens, 'usage.total_tokens');

      // The same prompt as token ids (OpenAI's int[] prompt) gives the same completion.
      const byIds = await openai.completions.create({ model: LM, prompt: s.prompt_ids, max_tokens: 40, temperature: 0 });
      assert.equal(byIds.choices[0].text, c.text, 'prompt as token ids');
      assert.equal(byIds.usage.prompt_tokens, s.prompt_ids.length);

      // scores.json's greedy ids, detokenized by the server, are the prompt and this completion.
      const ids = endedAtEos ? s.greedy_ids.slice(0, -1) : s.greedy_ids;
      const detok = await postJson('/detokenize', { model: LM, tokens: ids });
      assert.equal(detok.content, s.prompt + c.text, '/detokenize of scores.json greedy_ids');
      const tok = await postJson('/tokenize', { model: LM, content: s.prompt });
      assert.deepEqual(tok.tokens, s.prompt_ids, "/tokenize of the prompt vs scores.json's prompt_ids");
    });
  }

  test('a batch of prompts (string[]) gives one choice per prompt, each its solo completion', async () => {
    const r = await openai.completions.create({ model: LM, prompt: scores.map((s) => s.prompt), max_tokens: 40, temperature: 0 });
    assert.equal(r.choices.length, scores.length);
    for (const [i, s] of scores.entries()) {
      const c = r.choices.find((x) => x.index === i);
      assert.ok(c, `no choice with index ${i}`);
      assert.equal(c.text, cliGreedy.get(s.prompt), `choice ${i}`);
    }
    assert.equal(r.usage.prompt_tokens, scores.reduce((n, s) => n + s.prompt_ids.length, 0));
  });

  test('token-id batch (int[][])', async () => {
    const r = await openai.completions.create({ model: LM, prompt: scores.slice(0, 3).map((s) => s.prompt_ids), max_tokens: 40, temperature: 0 });
    assert.equal(r.choices.length, 3);
    for (let i = 0; i < 3; ++i) assert.equal(r.choices.find((x) => x.index === i).text, cliGreedy.get(scores[i].prompt));
  });
});

describe('completion options', () => {
  const s = scores[1];  // the longest continuation of the six

  test('echo: the prompt, then the completion', async () => {
    const r = await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 40, temperature: 0, echo: true });
    assert.equal(r.choices[0].text, s.prompt + cliGreedy.get(s.prompt));
  });

  test('finish_reason "length" and a prefix of the longer greedy completion', async () => {
    const r = await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 3, temperature: 0 });
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 3);
    assert.ok(r.choices[0].text.length > 0);
    assert.ok(cliGreedy.get(s.prompt).startsWith(r.choices[0].text),
      `${JSON.stringify(r.choices[0].text)} is not a prefix of ${JSON.stringify(cliGreedy.get(s.prompt))}`);
  });

  test('max_tokens defaults to 16', async () => {
    const r = await openai.completions.create({ model: LM, prompt: scores[3].prompt, temperature: 0 });
    // scores[3]'s greedy continuation runs 40 tokens without EOS, so 16 tokens stop by length.
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 16);
    assert.ok(cliGreedy.get(scores[3].prompt).startsWith(r.choices[0].text));
  });

  test('stop strings: the text ends before the first stop string, finish_reason "stop"', async () => {
    const full = cliGreedy.get(s.prompt);
    const words = full.split(' ').filter((w) => w);
    // A word from the middle of the greedy continuation, with its leading space.
    const stop = ' ' + words[Math.floor(words.length / 2)];
    const at = full.indexOf(stop);
    assert.ok(at > 0, 'the stop string occurs in the continuation');
    const expected = full.slice(0, at);
    for (const stopField of [stop, ['@@never@@', stop]]) {
      const r = await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 40, temperature: 0, stop: stopField });
      assert.equal(r.choices[0].text, expected, `stop ${JSON.stringify(stopField)}`);
      assert.equal(r.choices[0].finish_reason, 'stop', `stop ${JSON.stringify(stopField)}`);
    }
    // Streamed, the stop string never shows either.
    let text = '';
    let finish = null;
    for await (const chunk of await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 40, temperature: 0, stop, stream: true })) {
      for (const c of chunk.choices) { text += c.text; if (c.finish_reason) finish = c.finish_reason; }
    }
    assert.equal(text, expected, 'streamed with a stop string');
    assert.equal(finish, 'stop');
  });

  test('a stop string across token boundaries, streamed or not', async () => {
    const full = cliGreedy.get(s.prompt);
    // The end of one word, the space and the start of the next: no token boundary lies at its start.
    const words = full.split(' ');
    const w = Math.floor(words.length / 3);
    const stop = `${words[w].slice(-2)} ${words[w + 1].slice(0, 1)}`;
    const at = full.indexOf(stop);
    assert.ok(at > 0);
    const r = await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 40, temperature: 0, stop });
    assert.equal(r.choices[0].text, full.slice(0, at), `stop ${JSON.stringify(stop)}`);
    assert.equal(r.choices[0].finish_reason, 'stop');
    let text = '';
    for await (const chunk of await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 40, temperature: 0, stop, stream: true }))
      for (const c of chunk.choices) text += c.text;
    assert.equal(text, full.slice(0, at), `streamed, stop ${JSON.stringify(stop)}`);
  });

  test('the context edge: max_tokens = context - prompt runs to the last position; one more is a 400', async () => {
    const room = lmConfig().n_positions - s.prompt_ids.length;
    const r = await openai.completions.create({ model: LM, prompt: s.prompt_ids, max_tokens: room, temperature: 0, ignore_eos: true });
    assert.equal(r.usage.completion_tokens, room);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.total_tokens, lmConfig().n_positions);
    await assert.rejects(openai.completions.create({ model: LM, prompt: s.prompt_ids, max_tokens: room + 1 }), (e) => e.status === 400 && e.param === 'max_tokens');
    // A prompt of context - 1 tokens leaves room for one; a prompt of the whole context for none.
    const long = Array.from({ length: lmConfig().n_positions - 1 }, (_, i) => s.prompt_ids[i % s.prompt_ids.length]);
    const one = await openai.completions.create({ model: LM, prompt: long, max_tokens: 1, temperature: 0 });
    assert.equal(one.usage.prompt_tokens, long.length);
    assert.ok(one.usage.completion_tokens <= 1);
    await assert.rejects(openai.completions.create({ model: LM, prompt: [...long, s.prompt_ids[0]], max_tokens: 1 }), (e) => e.status === 400);
  });

  test('n=2 streamed: each index\'s deltas concatenate to the non-streamed choice of the same seed', async () => {
    const req = { model: LM, prompt: s.prompt, max_tokens: 16, temperature: 1, seed: 99, n: 2 };
    const whole = await openai.completions.create(req);
    const texts = ['', ''];
    const finish = [null, null];
    for await (const chunk of await openai.completions.create({ ...req, stream: true }))
      for (const c of chunk.choices) { texts[c.index] += c.text; if (c.finish_reason) finish[c.index] = c.finish_reason; }
    for (const c of whole.choices) {
      assert.equal(texts[c.index], c.text, `choice ${c.index}`);
      assert.equal(finish[c.index], c.finish_reason, `choice ${c.index}: finish_reason`);
    }
  });

  test('n=2: two indexed choices; temperature 0 makes both the greedy text', async () => {
    const r = await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 20, temperature: 0, n: 2 });
    assert.equal(r.choices.length, 2);
    assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1]);
    for (const c of r.choices) assert.ok(cliGreedy.get(s.prompt).startsWith(c.text));
  });

  test('n=2 with a seed: the same request twice gives the same two choices', async () => {
    const req = { model: LM, prompt: s.prompt, max_tokens: 20, temperature: 1, seed: 1234, n: 2 };
    const a = await openai.completions.create(req);
    const b = await openai.completions.create(req);
    assert.equal(a.choices.length, 2);
    const texts = (r) => r.choices.slice().sort((x, y) => x.index - y.index).map((c) => c.text);
    assert.deepEqual(texts(a), texts(b));
    assert.equal(a.usage.prompt_tokens, s.prompt_ids.length, 'usage.prompt_tokens counts the prompt once');
  });

  test('logprobs: tokens, token_logprobs, top_logprobs, text_offset', async () => {
    const k = 3;
    const r = await openai.completions.create({ model: LM, prompt: s.prompt, max_tokens: 10, temperature: 0, logprobs: k });
    const c = r.choices[0];
    const lp = c.logprobs;
    assert.ok(lp && typeof lp === 'object', 'choices[0].logprobs');
    const n = lp.tokens.length;
    assert.ok(n >= 1 && n <= 10);
    assert.equal(lp.token_logprobs.length, n);
    assert.equal(lp.top_logprobs.length, n);
    assert.equal(lp.text_offset.length, n);
    assert.equal(lp.tokens.join(''), c.text, 'the tokens spell the text');
    let offset = 0;
    for (let i = 0; i < n; ++i) {
      assert.equal(typeof lp.tokens[i], 'string');
      assert.ok(Number.isFinite(lp.token_logprobs[i]) && lp.token_logprobs[i] <= 0, `token_logprobs[${i}] = ${lp.token_logprobs[i]}`);
      const top = lp.top_logprobs[i];
      const values = Object.values(top);
      assert.ok(values.length >= 1 && values.length <= k, `top_logprobs[${i}] has ${values.length} entries`);
      for (const v of values) assert.ok(Number.isFinite(v) && v <= 0);
      // Greedy: the chosen token is the most probable one.
      assert.ok(Math.abs(Math.max(...values) - lp.token_logprobs[i]) < 1e-5,
        `greedy token ${i}: logprob ${lp.token_logprobs[i]}, best alternative ${Math.max(...values)}`);
      assert.ok(lp.tokens[i] in top, `top_logprobs[${i}] lacks the chosen token ${JSON.stringify(lp.tokens[i])}`);
      assert.equal(lp.text_offset[i], offset, `text_offset[${i}]`);
      offset += Buffer.byteLength(lp.tokens[i]);
    }
    // logprobs do not change the text.
    assert.ok(cliGreedy.get(s.prompt).startsWith(c.text));
  });
});

describe('seeded sampling', () => {
  const prompt = scores[1].prompt;
  const cases = [
    { name: 'temperature 0.8, seed 7', req: { temperature: 0.8, seed: 7 }, cli: ['--temperature', '0.8', '--seed', '7'] },
    { name: 'top_k 20', req: { temperature: 0.9, seed: 11, top_k: 20 }, cli: ['--temperature', '0.9', '--seed', '11', '--top-k', '20'] },
    { name: 'top_p 0.9', req: { temperature: 1, seed: 5, top_p: 0.9 }, cli: ['--temperature', '1', '--seed', '5', '--top-p', '0.9'] },
  ];
  for (const c of cases) {
    test(`${c.name}: the same request twice gives the same text, equal to tfm generate's`, async () => {
      const req = { model: LM, prompt, max_tokens: 40, ...c.req };
      const a = await openai.completions.create(req);
      const b = await openai.completions.create(req);
      assert.equal(a.choices[0].text, b.choices[0].text, 'two identical seeded requests');
      const cli = await cliContinuation(prompt, [...c.cli, '--max-new-tokens', '40']);
      assert.equal(a.choices[0].text, cli, `tfm generate ${c.cli.join(' ')} --max-new-tokens 40`);
    });
  }

  test('repetition_penalty 1.3 (greedy) equals tfm generate --repetition-penalty 1.3', async () => {
    const r = await openai.completions.create({ model: LM, prompt, max_tokens: 40, temperature: 0, repetition_penalty: 1.3 });
    const cli = await cliContinuation(prompt, ['--greedy', '--repetition-penalty', '1.3', '--max-new-tokens', '40']);
    assert.equal(r.choices[0].text, cli);
  });
});
