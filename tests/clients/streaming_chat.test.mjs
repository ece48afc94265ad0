// Streaming (SSE through the client's async iterator) for completions and chat, and chat's response shape.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import net from 'node:net';
import { API_KEY, BASE_URL, LM, MT, client, lmScores, post, readSse } from './lib/harness.mjs';

const openai = client();
const scores = lmScores().greedy;

describe('streamed completions', () => {
  for (const [i, s] of scores.slice(0, 4).entries()) {
    test(`prompt ${i}: the deltas concatenate to the non-streamed text`, async () => {
      const req = { model: LM, prompt: s.prompt, max_tokens: 40, temperature: 0 };
      const whole = await openai.completions.create(req);
      const stream = await openai.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let finish = null;
      let usage = null;
      let chunks = 0;
      for await (const chunk of stream) {
        ++chunks;
        assert.equal(chunk.object, 'text_completion');
        assert.equal(chunk.model, LM);
        if (chunk.usage) {
          assert.equal(usage, null, 'one usage chunk');
          assert.deepEqual(chunk.choices, [], 'the usage chunk has no choices');
          usage = chunk.usage;
          continue;
        }
        assert.equal(usage, null, 'the usage chunk is the last one');
        for (const c of chunk.choices) {
          assert.equal(c.index, 0);
          assert.equal(finish, null, 'nothing after the chunk with finish_reason');
          text += c.text;
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
      assert.equal(text, whole.choices[0].text);
      assert.equal(finish, whole.choices[0].finish_reason);
      assert.ok(chunks >= 3, `only ${chunks} chunks: the tokens were not streamed one by one`);
      assert.deepEqual(usage, whole.usage, 'stream_options.include_usage: the last chunk has the usage');
    });
  }

  test('without include_usage no chunk carries usage', async () => {
    for await (const chunk of await openai.completions.create({ model: LM, prompt: scores[0].prompt, max_tokens: 8, temperature: 0, stream: true }))
      assert.ok(!chunk.usage, `a chunk has usage: ${JSON.stringify(chunk)}`);
  });

  test('raw SSE: "data: {...}" events, then "data: [DONE]"', async () => {
    const res = await post('/v1/completions', { model: LM, prompt: scores[0].prompt, max_tokens: 8, temperature: 0, stream: true });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/event-stream/);
    const events = [];
    await readSse(res, (e) => { events.push(e); });
    assert.equal(events.at(-1), '[DONE]');
    assert.ok(events.slice(0, -1).every((e) => typeof e === 'object' && Array.isArray(e.choices)));
  });
});

describe('streaming on a keep-alive connection', () => {
  // SDKs keep connections alive. A server that leaves Nagle's algorithm on (no TCP_NODELAY) holds its small SSE
  // writes back until the client's delayed ACK (40 ms on Linux) once a connection is past its first exchange:
  // time to first token grows by ~40 ms and a short completion arrives in one burst. Four streamed
  // requests of 24 tokens on one socket: after the first, each should still come in many separate reads.
  test('later streamed requests on one connection still arrive token by token', async () => {
    const { port } = new URL(BASE_URL);
    const body = JSON.stringify({ model: LM, prompt: 'And God said', max_tokens: 24, temperature: 0, ignore_eos: true, stream: true });
    const request = `POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${API_KEY}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    const socket = net.connect({ host: '127.0.0.1', port: Number(port), noDelay: true });
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
    const rounds = [];
    try {
      for (let round = 0; round < 4; ++round) {
        let received = '';
        let reads = 0;
        let first = null;
        const t0 = performance.now();
        await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('no complete response in 30 s')), 30_000);
          const onData = (d) => {
            received += d.toString('latin1');
            if (received.includes('data: ')) {
              ++reads;
              if (first === null) first = performance.now() - t0;
            }
            if (received.includes('data: [DONE]') && received.endsWith('0\r\n\r\n')) {
              clearTimeout(timer);
              socket.off('data', onData);
              resolve();
            }
          };
          socket.on('data', onData);
          socket.write(request);
        });
        assert.match(received, /^HTTP\/1\.1 200/);
        rounds.push({ reads, first_ms: Math.round(first * 10) / 10 });
      }
    } finally {
      socket.destroy();
    }
    const best = Math.max(...rounds.slice(1).map((r) => r.reads));
    assert.ok(best >= 8, `on a reused connection the 24 token events came in at most ${best} reads ` +
      `(rounds: ${JSON.stringify(rounds)}): the server's SSE writes are held back by Nagle (set TCP_NODELAY)`);
  });
});

describe('chat completions', () => {
  const messages = [
    { role: 'system', content: 'You answer in the words of the King James Bible.' },
    { role: 'user', content: 'What did God create in the beginning?' },
  ];

  test('response shape', async () => {
    const r = await openai.chat.completions.create({ model: LM, messages, max_tokens: 24, temperature: 0 });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, LM);
    assert.equal(typeof r.id, 'string');
    assert.equal(typeof r.created, 'number');
    assert.equal(r.choices.length, 1);
    const c = r.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
    assert.ok(r.usage.prompt_tokens > 0);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 24);
    if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 24);
    assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  });

  test('max_completion_tokens limits the answer', async () => {
    const r = await openai.chat.completions.create({ model: LM, messages, max_completion_tokens: 3, temperature: 0 });
    assert.ok(r.usage.completion_tokens <= 3);
    if (r.choices[0].finish_reason === 'length') assert.equal(r.usage.completion_tokens, 3);
    const longer = await openai.chat.completions.create({ model: LM, messages, max_tokens: 24, temperature: 0 });
    assert.ok(longer.choices[0].message.content.startsWith(r.choices[0].message.content), 'greedy: a prefix of the longer answer');
  });

  test('streamed: first delta is the assistant role, the contents concatenate to the non-streamed answer', async () => {
    const req = { model: LM, messages, max_tokens: 24, temperature: 0 };
    const whole = await openai.chat.completions.create(req);
    const deltas = [];
    let finish = null;
    let usage = null;
    for await (const chunk of await openai.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } })) {
      if (chunk.usage) { usage = chunk.usage; assert.deepEqual(chunk.choices, []); continue; }
      assert.equal(chunk.object, 'chat.completion.chunk');
      for (const c of chunk.choices) {
        assert.equal(c.index, 0);
        assert.equal(finish, null, 'nothing after finish_reason');
        deltas.push(c.delta);
        if (c.finish_reason) finish = c.finish_reason;
      }
    }
    assert.deepEqual(deltas[0], { role: 'assistant', content: '' }, 'the first delta');
    for (const d of deltas.slice(1)) assert.ok(!('role' in d) || d.role === undefined, `a later delta has a role: ${JSON.stringify(d)}`);
    const text = deltas.slice(1).map((d) => d.content ?? '').join('');
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, whole.choices[0].finish_reason);
    assert.deepEqual(usage, whole.usage);
  });

  test('seeded sampling repeats', async () => {
    const req = { model: LM, messages, max_tokens: 24, temperature: 0.9, seed: 42 };
    const a = await openai.chat.completions.create(req);
    const b = await openai.chat.completions.create(req);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  });

  test('chat with the translation model is a 400', async () => {
    await assert.rejects(openai.chat.completions.create({ model: MT, messages, max_tokens: 4 }), (e) => {
      assert.equal(e.status, 400, String(e));
      assert.equal(e.param, 'model');
      return true;
    });
  });
});
