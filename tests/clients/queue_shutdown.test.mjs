// A second server of its own, --parallel 1 --max-queue 1 and its key from --api-key-file: a full queue
// answers 429 with Retry-After while the admitted requests succeed; SIGTERM lets an in-flight request
// finish and exits 0.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import {
  LM, LM_DIR, assertErrorShape, assertHealthy, expectError, kjvPrompts, readSse, startServer, waitIdle,
} from './lib/harness.mjs';

const KEY = 'queue-test-key';
let server;
let dir;

const post = (path, body) => fetch(`${server.base}${path}`, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${KEY}` },
  body: JSON.stringify(body),
});

// GET on a connection of its own (agent: false): its status, or 'refused'.
const freshGet = (url) => new Promise((resolve) => {
  const req = http.get(url, { agent: false }, (res) => { res.resume(); resolve(res.statusCode); });
  req.on('error', () => resolve('refused'));
  req.setTimeout(5000, () => { req.destroy(); resolve('timeout'); });
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tfm-serve-queue-'));
  writeFileSync(join(dir, 'key'), `${KEY}\n`);
  server = await startServer(['--model', LM_DIR, '--parallel', '1', '--max-queue', '1', '--threads', '1', '--api-key-file', join(dir, 'key')]);
});

after(async () => {
  if (server) await server.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a full queue', () => {
  test('6 concurrent long requests: some 429 with Retry-After, the others complete', async () => {
    const prompts = kjvPrompts(6, { skip: 5000 });
    const responses = await Promise.all(prompts.map((prompt) => post('/v1/completions', {
      model: LM, prompt, max_tokens: 200, temperature: 0, ignore_eos: true,
    }).then(async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), body: JSON.parse(await res.text()) }))));
    const statuses = responses.map((r) => r.status);
    assert.ok(statuses.includes(429), `no 429 among ${statuses}`);
    assert.ok(statuses.includes(200), `no request succeeded: ${statuses}`);
    for (const r of responses) {
      if (r.status === 429) {
        assert.ok(r.retryAfter !== null && /^\d+$/.test(r.retryAfter), `429 without a numeric Retry-After: ${r.retryAfter}`);
        assertErrorShape(r.body, '429');
      } else {
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.usage.completion_tokens, 200, 'ignore_eos: all 200 tokens');
        assert.equal(r.body.choices[0].finish_reason, 'length');
      }
    }
    // One running and one waiting at most: at most 2 can have been admitted while all 6 were in flight.
    assert.ok(statuses.filter((s) => s === 429).length >= 1);
    assert.deepEqual(await waitIdle(server.base, 5000, KEY), { running: 0, waiting: 0, kv: 0 });
    await assertHealthy(server.base, '429s');
  }, { timeout: 120_000 });

  test('streamed: a full queue is an HTTP 429 with Retry-After too, not a 200 with an error event', async () => {
    const prompts = kjvPrompts(6, { skip: 9000 });
    const responses = await Promise.all(prompts.map(async (prompt) => {
      const res = await post('/v1/completions', { model: LM, prompt, max_tokens: 200, temperature: 0, ignore_eos: true, stream: true });
      const r = { status: res.status, retryAfter: res.headers.get('retry-after'), events: [], body: null };
      if (res.status === 200) await readSse(res, (e) => { r.events.push(e); });
      else r.body = JSON.parse(await res.text());
      return r;
    }));
    const statuses = responses.map((r) => r.status);
    for (const r of responses) {
      if (r.status === 200) {
        const errors = r.events.filter((e) => e !== '[DONE]' && e.error);
        assert.deepEqual(errors, [], 'a 200 stream carries an error event instead of a 429 status');
        assert.equal(r.events.at(-1), '[DONE]');
      } else {
        assert.equal(r.status, 429, JSON.stringify(r.body));
        assert.ok(r.retryAfter && /^\d+$/.test(r.retryAfter), 'Retry-After');
        assertErrorShape(r.body, 'streamed 429');
      }
    }
    assert.ok(statuses.includes(429), `no 429 among ${statuses}`);
    assert.deepEqual(await waitIdle(server.base, 5000, KEY), { running: 0, waiting: 0, kv: 0 });
  }, { timeout: 120_000 });

  test('the client sees RateLimitError (maxRetries 0)', async () => {
    const openai = new OpenAI({ baseURL: `${server.base}/v1`, apiKey: KEY, maxRetries: 0 });
    const prompts = kjvPrompts(4, { skip: 7000 });
    const settled = await Promise.allSettled(prompts.map((prompt) => openai.completions.create({ model: LM, prompt, max_tokens: 150, temperature: 0, ignore_eos: true })));
    const rejected = settled.filter((s) => s.status === 'rejected').map((s) => s.reason);
    assert.ok(rejected.length >= 1, 'no request was refused');
    for (const e of rejected) {
      assert.ok(e instanceof OpenAI.RateLimitError, String(e));
      assert.equal(e.status, 429);
    }
  }, { timeout: 120_000 });
});

describe('a KV-cache budget smaller than one request', () => {
  test('--kv-budget-mb 1: a request that can never fit is a 400 naming max_tokens, streamed or not', async () => {
    const small = await startServer(['--model', LM_DIR, '--kv-budget-mb', '1', '--threads', '1']);
    try {
      const req = { model: LM, prompt: 'And God said', max_tokens: 250, temperature: 0 };
      const send = (body) => fetch(`${small.base}/v1/completions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
      const plain = await send(req);
      const e = await expectError(plain, 400, 'over the KV budget');
      assert.equal(e.param, 'max_tokens');
      const streamed = await send({ ...req, stream: true });
      const text = await streamed.text();
      assert.equal(streamed.status, 400, `streamed over the KV budget: ${streamed.status} ${text.slice(0, 300)}`);
      assertErrorShape(JSON.parse(text), 'streamed over the KV budget');
      // A small request still fits.
      const ok = await send({ ...req, max_tokens: 8 });
      assert.equal(ok.status, 200, await ok.text());
    } finally {
      assert.equal(await small.stop(), 0);
    }
  }, { timeout: 120_000 });
});

describe('SIGTERM', () => {
  test('in-flight requests (running and waiting) finish; new connections are refused; the server exits 0', async () => {
    // --parallel 1 --max-queue 1: the first runs, the second waits; both are in flight when SIGTERM comes.
    const body = (prompt) => ({ model: LM, prompt, max_tokens: 240, temperature: 0, ignore_eos: true, stream: true });
    const [first, second] = await Promise.all([post('/v1/completions', body('And God said')), post('/v1/completions', body('And the LORD spake'))]);
    assert.equal(first.status, 200);
    assert.equal(second.status, 200);
    const results = [{ text: '', finish: null, done: false }, { text: '', finish: null, done: false }];
    const collect = (res, r, onFirst) => readSse(res, (e) => {
      if (e === '[DONE]') { r.done = true; return false; }
      for (const c of e.choices) { r.text += c.text; if (c.finish_reason) r.finish = c.finish_reason; }
      if (onFirst) { onFirst(); onFirst = null; }
      return true;
    });
    let signalled = null;
    let probe = null;
    const firstDone = collect(first, results[0], () => {
      signalled = server.stop();  // SIGTERM after the first chunk
      // Soon after, on a new connection (no keep-alive reuse), a request is refused or answered 503.
      probe = new Promise((r) => setTimeout(r, 50)).then(() => freshGet(`${server.base}/health`));
    });
    await Promise.all([firstDone, collect(second, results[1])]);
    for (const [i, r] of results.entries()) {
      assert.ok(r.done, `request ${i}: the stream ended with [DONE]`);
      assert.equal(r.finish, 'length', `request ${i} ran to its 240 tokens`);
    }
    const probed = await probe;
    assert.ok(probed === 'refused' || probed === 503, `GET /health on a new connection after SIGTERM answered ${probed}`);
    const code = await signalled;
    const base = server.base;
    server = null;
    assert.equal(code, 0, 'exit status after SIGTERM');
    await assert.rejects(fetch(`${base}/health`), 'nothing listens after the exit');
  }, { timeout: 120_000 });
});
