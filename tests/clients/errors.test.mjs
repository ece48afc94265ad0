// Errors: through the openai client (its error classes, status, param) and as raw HTTP (status and OpenAI's
// {"error": {message, type, param, code}} shape). After every error the server still answers /health.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  BASE_URL, LM, MAX_BODY_BYTES, MT, assertErrorShape, assertHealthy, client, expectError, get, lmConfig, post,
} from './lib/harness.mjs';

const openai = client();
const context = lmConfig().n_positions;

async function clientError(promise, what) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `${what}: the request succeeded`);
  assert.ok(error instanceof OpenAI.APIError, `${what}: ${error}`);
  assertErrorShape({ error: error.error }, what);
  await assertHealthy(BASE_URL, what);
  return error;
}

describe('errors through the openai client', () => {
  test('unknown model', async () => {
    const e = await clientError(openai.completions.create({ model: 'no-such-model', prompt: 'x', max_tokens: 1 }), 'unknown model');
    assert.ok([400, 404].includes(e.status), `status ${e.status}`);
    if (e.status === 404) assert.ok(e instanceof OpenAI.NotFoundError);
    else assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.param, 'model');
    assert.equal(e.code, 'model_not_found');
  });

  test('max_tokens beyond the context', async () => {
    const e = await clientError(openai.completions.create({ model: LM, prompt: 'In the beginning', max_tokens: context + 10 }), 'max_tokens > context');
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.param, 'max_tokens');
  });

  test('a prompt longer than the context', async () => {
    const ids = Array.from({ length: context + 5 }, (_, i) => 100 + (i % 50));
    const e = await clientError(openai.completions.create({ model: LM, prompt: ids, max_tokens: 1 }), 'prompt > context');
    assert.equal(e.status, 400);
    assert.equal(e.param, 'prompt');
  });

  test('completions with the translation model', async () => {
    const e = await clientError(openai.completions.create({ model: MT, prompt: 'Hello', max_tokens: 1 }), 'completion with mt');
    assert.equal(e.status, 400);
    assert.equal(e.param, 'model');
  });

  test('chat without messages', async () => {
    const e = await clientError(openai.chat.completions.create({ model: LM, messages: [] }), 'empty messages');
    assert.equal(e.status, 400);
    assert.equal(e.param, 'messages');
  });

  test('chat messages with an unknown role, or without content', async () => {
    for (const messages of [[{ role: 'wizard', content: 'Hello' }], [{ role: 'user' }], [{ role: 'user', content: 7 }]]) {
      const e = await clientError(openai.chat.completions.create({ model: LM, messages, max_tokens: 2 }), `messages ${JSON.stringify(messages)}`);
      assert.equal(e.status, 400, `messages ${JSON.stringify(messages)}`);
      assert.match(String(e.param), /^messages/, `messages ${JSON.stringify(messages)}: param`);
    }
  });

  test('a wrong API key', async () => {
    const wrong = client({ apiKey: 'not-the-key' });
    const e = await clientError(wrong.completions.create({ model: LM, prompt: 'x', max_tokens: 1 }), 'wrong key');
    assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
    assert.equal(e.status, 401);
    const e2 = await clientError(wrong.models.list(), 'wrong key, models');
    assert.equal(e2.status, 401);
  });

  test('an out-of-range sampling field', async () => {
    const e = await clientError(openai.completions.create({ model: LM, prompt: 'x', max_tokens: 1, temperature: -1 }), 'temperature -1');
    assert.equal(e.status, 400);
    assert.equal(e.param, 'temperature');
  });
});

describe('raw HTTP errors', () => {
  const cases = [
    { name: 'malformed JSON', body: '{"model": "lm-kjv", "prompt": ', status: 400 },
    { name: 'a JSON array body', body: '[1, 2]', status: 400 },
    { name: 'max_tokens "ten"', body: { model: LM, prompt: 'In the beginning', max_tokens: 'ten' }, status: 400, param: 'max_tokens' },
    { name: 'prompt a number', body: { model: LM, prompt: 42 }, status: 400, param: 'prompt' },
    { name: 'temperature a string', body: { model: LM, prompt: 'x', temperature: 'hot' }, status: 400, param: 'temperature' },
    { name: 'stream a string', body: { model: LM, prompt: 'x', stream: 'yes' }, status: 400, param: 'stream' },
    { name: 'empty prompt', body: { model: LM, prompt: '' }, status: 400, param: 'prompt' },
    { name: 'empty token-id prompt', body: { model: LM, prompt: [] }, status: 400, param: 'prompt' },
    { name: 'token id outside the vocabulary', body: { model: LM, prompt: [lmConfig().vocab_size + 1] }, status: 400, param: 'prompt' },
    { name: 'negative max_tokens', body: { model: LM, prompt: 'x', max_tokens: -3 }, status: 400, param: 'max_tokens' },
    {
      name: 'invalid UTF-8 bytes in the body',
      body: Buffer.concat([Buffer.from('{"model": "lm-kjv", "prompt": "In the '), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('", "max_tokens": 2}')]),
      status: 400,
    },
    {
      name: 'an overlong UTF-8 encoding',
      body: Buffer.concat([Buffer.from('{"model": "lm-kjv", "prompt": "'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]),
      status: 400,
    },
    { name: 'unknown model', body: { model: 'nope', prompt: 'x' }, status: 404, param: 'model' },
  ];
  for (const c of cases) {
    test(`POST /v1/completions, ${c.name} -> ${c.status}`, async () => {
      const e = await expectError(await post('/v1/completions', c.body), c.status, c.name);
      if (c.param) assert.equal(e.param, c.param, `${c.name}: error.param`);
      await assertHealthy(BASE_URL, c.name);
    });
  }

  test(`a body over --max-body-bytes (${MAX_BODY_BYTES}) -> 413`, async () => {
    const body = JSON.stringify({ model: LM, prompt: 'In the beginning '.repeat(Math.ceil((MAX_BODY_BYTES + 1000) / 17)), max_tokens: 1 });
    assert.ok(Buffer.byteLength(body) > MAX_BODY_BYTES);
    let res;
    try {
      res = await post('/v1/completions', body);
    } catch (e) {
      assert.fail(`the server dropped the connection instead of answering 413: ${e.cause ?? e}`);
    }
    await expectError(res, 413, 'body over the limit');
    await assertHealthy(BASE_URL, '413');
  });

  test('a body just under --max-body-bytes is read', async () => {
    const pad = MAX_BODY_BYTES - 200;
    const body = JSON.stringify({ model: LM, prompt: 'In the beginning', max_tokens: 1, user: 'x'.repeat(pad) });
    assert.ok(Buffer.byteLength(body) < MAX_BODY_BYTES);
    const res = await post('/v1/completions', body);
    assert.equal(res.status, 200, await res.text());
  });

  test('no Authorization header -> 401', async () => {
    for (const [method, path] of [['POST', '/v1/completions'], ['POST', '/v1/chat/completions'], ['POST', '/v1/embeddings'], ['GET', '/v1/models'], ['POST', '/translate'], ['POST', '/tokenize']]) {
      const res = method === 'GET' ? await get(path, { auth: false }) : await post(path, { model: LM, prompt: 'x', input: 'x', content: 'x', q: 'x', source: 'en', target: 'es', messages: [{ role: 'user', content: 'x' }] }, { auth: false });
      await expectError(res, 401, `${method} ${path} without a key`);
    }
    const wrong = await post('/v1/completions', { model: LM, prompt: 'x' }, { auth: false, headers: { Authorization: 'Bearer wrong' } });
    await expectError(wrong, 401, 'a wrong key');
    const basic = await post('/v1/completions', { model: LM, prompt: 'x' }, { auth: false, headers: { Authorization: 'Basic Zm9vOmJhcg==' } });
    await expectError(basic, 401, 'Basic auth instead of Bearer');
    await assertHealthy(BASE_URL, '401');
  });

  test('GET /health needs no key', async () => {
    await assertHealthy(BASE_URL, 'nothing');
  });

  test('an unknown path -> 404', async () => {
    await expectError(await get('/v1/nothing-here'), 404, 'GET /v1/nothing-here');
    await expectError(await post('/v1/nothing', { model: LM }), 404, 'POST /v1/nothing');
    await assertHealthy(BASE_URL, '404');
  });

  test('embeddings and tokenize errors', async () => {
    let e = await expectError(await post('/v1/embeddings', { model: LM, input: '' }), 400, 'empty embedding input');
    assert.equal(e.param, 'input');
    e = await expectError(await post('/v1/embeddings', { model: LM, input: 'x', encoding_format: 'hex' }), 400, 'bad encoding_format');
    assert.equal(e.param, 'encoding_format');
    e = await expectError(await post('/tokenize', { model: LM, content: 5 }), 400, 'tokenize content a number');
    assert.equal(e.param, 'content');
    e = await expectError(await post('/detokenize', { model: LM, tokens: ['a'] }), 400, 'detokenize a string token');
    assert.equal(e.param, 'tokens');
    await assertHealthy(BASE_URL, 'embeddings errors');
  });
});
