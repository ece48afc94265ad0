// Continuous batching seen from clients: 32 concurrent streamed greedy completions each equal their solo
// result; with half of them aborted midway the other half still do, and the server frees every sequence
// and its KV cache afterwards (GET /metrics).
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { LM, client, kjvPrompts, metricValue, metrics, waitIdle } from './lib/harness.mjs';

const openai = client();
const COUNT = 32;
const prompts = kjvPrompts(COUNT);
const maxTokens = prompts.map((_, i) => 8 + ((i * 23) % 57));  // 8 .. 64, mixed
const solo = [];

// One streamed completion; `abortAfter` chunks (if given), then AbortController.abort().
async function streamed(i, { abortAfter, extra = {} } = {}) {
  const controller = new AbortController();
  const stream = await openai.completions.create(
    { model: LM, prompt: prompts[i], max_tokens: maxTokens[i], temperature: 0, stream: true, ...extra },
    { signal: controller.signal });
  let text = '';
  let finish = null;
  let chunks = 0;
  let aborted = false;
  try {
    for await (const chunk of stream) {
      for (const c of chunk.choices) { text += c.text; if (c.finish_reason) finish = c.finish_reason; }
      if (abortAfter !== undefined && ++chunks === abortAfter) { controller.abort(); aborted = true; }
    }
  } catch (e) {
    if (!aborted || !(e instanceof OpenAI.APIUserAbortError || e?.name === 'AbortError')) throw e;
  }
  return { text, finish, aborted };
}

before(async () => {
  for (let i = 0; i < COUNT; ++i) solo.push(await streamed(i));
  // The prompts do not all give the same text (the test would be weak).
  assert.ok(new Set(solo.map((s) => s.text)).size > COUNT / 2);
}, { timeout: 120_000 });

describe('concurrent streaming', () => {
  test(`${COUNT} concurrent streamed completions each equal their solo result`, async () => {
    const before = metricValue((await metrics()).filter((s) => s.labels.endpoint === '/v1/completions' && s.labels.status === '200'), 'tfm_requests_total') ?? 0;
    const results = await Promise.all(prompts.map((_, i) => streamed(i)));
    for (let i = 0; i < COUNT; ++i) {
      assert.equal(results[i].text, solo[i].text, `request ${i} (${JSON.stringify(prompts[i])}, max_tokens ${maxTokens[i]})`);
      assert.equal(results[i].finish, solo[i].finish, `request ${i}: finish_reason`);
    }
    const idle = await waitIdle();
    assert.deepEqual(idle, { running: 0, waiting: 0, kv: 0 }, 'after the requests: /metrics');
    const after = metricValue((await metrics()).filter((s) => s.labels.endpoint === '/v1/completions' && s.labels.status === '200'), 'tfm_requests_total');
    assert.ok(after - before >= COUNT, `tfm_requests_total{endpoint="/v1/completions",status="200"} grew by ${after - before}`);
  }, { timeout: 120_000 });

  test(`${COUNT} again with half aborted after a few chunks: the others equal their solo results, nothing leaks`, async () => {
    const results = await Promise.all(prompts.map((_, i) => (i % 2 === 1
      // Aborted ones are made long (ignore_eos, 150 tokens) so that they are still running when dropped.
      ? streamed(i, { abortAfter: 3, extra: { max_tokens: 150, ignore_eos: true } })
      : streamed(i))));
    let aborted = 0;
    for (let i = 0; i < COUNT; ++i) {
      if (i % 2 === 1) { aborted += results[i].aborted; continue; }
      assert.equal(results[i].text, solo[i].text, `request ${i} beside aborted ones`);
      assert.equal(results[i].finish, solo[i].finish);
    }
    assert.ok(aborted >= COUNT / 4, `only ${aborted} requests were aborted midway`);
    const idle = await waitIdle(undefined, 5000);
    assert.deepEqual(idle, { running: 0, waiting: 0, kv: 0 }, 'after the aborts: tfm_running_sequences, tfm_queue_length, tfm_kv_cache_bytes');
  }, { timeout: 120_000 });

  test('concurrent seeded sampling requests equal their solo results', async () => {
    const req = (i) => ({ model: LM, prompt: prompts[i], max_tokens: 32, temperature: 0.9, top_p: 0.95, seed: 100 + i });
    const alone = [];
    for (let i = 0; i < 8; ++i) alone.push((await openai.completions.create(req(i))).choices[0].text);
    const together = await Promise.all(Array.from({ length: 8 }, (_, i) => openai.completions.create(req(i))));
    for (let i = 0; i < 8; ++i) assert.equal(together[i].choices[0].text, alone[i], `seeded request ${i}`);
  }, { timeout: 120_000 });

  test('/metrics: Prometheus text with the counters, gauges and latency histograms', async () => {
    const res = await fetch(`${process.env.TFM_BASE_URL}/metrics`, { headers: { Authorization: `Bearer ${process.env.TFM_API_KEY}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') || '', /^text\/plain/);
    const text = await res.text();
    const s = await metrics();
    for (const name of ['tfm_prompt_tokens_total', 'tfm_generated_tokens_total', 'tfm_queue_length', 'tfm_running_sequences', 'tfm_kv_cache_bytes'])
      assert.notEqual(metricValue(s, name), undefined, `${name} is missing`);
    assert.ok(metricValue(s, 'tfm_generated_tokens_total') > 0);
    assert.ok(s.some((x) => x.name === 'tfm_requests_total' && x.labels.endpoint && x.labels.status), 'tfm_requests_total{endpoint,status}');
    // Two histograms (time to first token, per-token latency): _bucket with le, _sum, _count.
    const histograms = [...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map((m) => m[1]);
    assert.ok(histograms.length >= 2, `histograms: ${histograms}`);
    for (const h of histograms) {
      const buckets = s.filter((x) => x.name === `${h}_bucket`);
      assert.ok(buckets.some((b) => b.labels.le === '+Inf'), `${h} has no +Inf bucket`);
      const count = metricValue(s, `${h}_count`);
      const inf = buckets.filter((b) => b.labels.le === '+Inf').reduce((n, b) => n + b.value, 0);
      assert.equal(inf, count, `${h}: +Inf bucket = _count`);
      assert.ok(count > 0, `${h}_count is 0`);
    }
  });
});
