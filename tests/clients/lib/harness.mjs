// Shared pieces of the real-client tests of `tfm serve`: where the server run.sh started is, the official
// `openai` client pointed at it, the tfm CLI for reference outputs, and a way to start a second server.
//
// Environment (run.sh sets it): TFM_BASE_URL (http://127.0.0.1:PORT), TFM_API_KEY, TFM_CLI (the tfm binary),
// TFM_SHARED (the shared/ folder), TFM_MAX_BODY_BYTES (the server's --max-body-bytes).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the tests through tests/clients/run.sh`);
  return value;
}

export const BASE_URL = required('TFM_BASE_URL');
export const API_KEY = required('TFM_API_KEY');
export const CLI = required('TFM_CLI');
export const SHARED = required('TFM_SHARED');
export const MAX_BODY_BYTES = Number(process.env.TFM_MAX_BODY_BYTES || 262144);

// Only loopback: every request these tests send goes to a server on this machine.
{
  const host = new URL(BASE_URL).hostname;
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '[::1]')
    throw new Error(`TFM_BASE_URL must be a loopback address, not ${host}`);
}

export const LM = 'lm-kjv';
export const MT = 'mt-en-es';
export const LM_DIR = join(SHARED, 'models', LM);
export const MT_DIR = join(SHARED, 'models', MT);

export const lmScores = () => JSON.parse(readFileSync(join(LM_DIR, 'scores.json'), 'utf8'));
export const lmConfig = () => JSON.parse(readFileSync(join(LM_DIR, 'config.json'), 'utf8'));

// The official client at the test server. No retries: a retried request would hide a 429 or a 5xx.
export function client(options = {}) {
  return new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: API_KEY, maxRetries: 0, timeout: 120_000, ...options });
}

// Raw HTTP. `body` is an object (sent as JSON), a string or a Buffer (sent as is).
export async function post(path, body, { auth = true, headers = {}, base = BASE_URL, signal } = {}) {
  const h = { 'Content-Type': 'application/json', ...headers };
  if (auth) h.Authorization = `Bearer ${API_KEY}`;
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return fetch(`${base}${path}`, { method: 'POST', headers: h, body: payload, signal });
}

export async function get(path, { auth = true, base = BASE_URL, key = API_KEY } = {}) {
  return fetch(`${base}${path}`, { headers: auth ? { Authorization: `Bearer ${key}` } : {} });
}

export async function postJson(path, body, options) {
  const res = await post(path, body, options);
  const text = await res.text();
  assert.equal(res.status, 200, `POST ${path} ${JSON.stringify(body).slice(0, 300)} -> ${res.status} ${text}`);
  return JSON.parse(text);
}

// OpenAI's error object: {"error": {"message": string, "type": string, "param": string|null, "code": ...}}.
export function assertErrorShape(body, what) {
  assert.equal(typeof body, 'object', `${what}: the body is not a JSON object`);
  assert.ok(body && typeof body.error === 'object' && body.error !== null, `${what}: no "error" object: ${JSON.stringify(body)}`);
  const e = body.error;
  for (const key of ['message', 'type', 'param', 'code'])
    assert.ok(key in e, `${what}: error.${key} is missing: ${JSON.stringify(body)}`);
  assert.equal(typeof e.message, 'string', `${what}: error.message`);
  assert.ok(e.message.length > 0, `${what}: error.message is empty`);
  assert.equal(typeof e.type, 'string', `${what}: error.type`);
  assert.ok(e.param === null || typeof e.param === 'string', `${what}: error.param is ${JSON.stringify(e.param)}`);
  assert.ok(e.code === null || typeof e.code === 'string', `${what}: error.code is ${JSON.stringify(e.code)}`);
  return e;
}

// A response that must be an error with `status` and OpenAI's error shape; returns the error object.
export async function expectError(res, status, what) {
  const text = await res.text();
  assert.equal(res.status, status, `${what}: status ${res.status}, body ${text.slice(0, 500)}`);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    assert.fail(`${what}: the ${status} body is not JSON: ${JSON.stringify(text.slice(0, 300))}`);
  }
  return assertErrorShape(body, what);
}

export async function assertHealthy(base = BASE_URL, what = '') {
  const res = await fetch(`${base}/health`);
  const text = await res.text();
  assert.equal(res.status, 200, `GET /health after ${what}: ${res.status} ${text}`);
  assert.deepEqual(JSON.parse(text), { status: 'ok' }, `GET /health after ${what}`);
}

// Runs the tfm CLI; resolves to stdout (the command must exit 0).
export function runCli(args, { input, timeout = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(CLI, args, { maxBuffer: 64 << 20, timeout, env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' } },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${CLI} ${args.join(' ')}: ${error.message}\n${stderr}`));
        else resolve(stdout);
      });
    if (input !== undefined) child.stdin.end(input);
  });
}

// `tfm generate` prints the prompt, then the continuation, then one newline. Returns the continuation.
export async function cliContinuation(prompt, args) {
  const out = await runCli(['generate', '--model', LM_DIR, '--prompt', prompt, ...args]);
  assert.ok(out.startsWith(prompt), `tfm generate's output does not start with the prompt: ${JSON.stringify(out)}`);
  assert.ok(out.endsWith('\n'), `tfm generate's output does not end with a newline: ${JSON.stringify(out)}`);
  return out.slice(prompt.length, -1);
}

// At most `width` promises of `tasks` (functions) at a time; results in order.
export async function limited(tasks, width) {
  const results = new Array(tasks.length);
  let next = 0;
  async function worker() {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
  return results;
}

// Parses Prometheus text into [{name, labels, value}].
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

// The sum of a metric's samples (over all label sets), or undefined when the metric is absent.
export function metricValue(samples, name) {
  const matching = samples.filter((s) => s.name === name);
  if (matching.length === 0) return undefined;
  return matching.reduce((sum, s) => sum + s.value, 0);
}

export async function metrics(base = BASE_URL, key = API_KEY) {
  const res = await get('/metrics', { base, key });
  const text = await res.text();
  assert.equal(res.status, 200, `GET /metrics: ${res.status} ${text}`);
  return parseMetrics(text);
}

// Polls /metrics until running sequences, waiting requests and KV-cache bytes are all 0 (or `ms` pass);
// returns the last values.
export async function waitIdle(base = BASE_URL, ms = 5000, key = API_KEY) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    const s = await metrics(base, key);
    last = {
      running: metricValue(s, 'tfm_running_sequences'),
      waiting: metricValue(s, 'tfm_queue_length'),
      kv: metricValue(s, 'tfm_kv_cache_bytes'),
    };
    if (last.running === 0 && last.waiting === 0 && last.kv === 0) return last;
    if (Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Starts another `tfm serve` on port 0 with `args`; resolves to {base, child, stop()} once its ready line
// is printed. stop() sends SIGTERM and resolves to the exit code (SIGKILL after 20 s).
export function startServer(args, { readyTimeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, ['serve', '--host', '127.0.0.1', '--port', '0', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE' },
    });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const exited = new Promise((r) => child.on('exit', (code, signal) => r(code ?? `signal ${signal}`)));
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tfm serve ${args.join(' ')} printed no ready line in ${readyTimeoutMs} ms\n${stderr}`));
    }, readyTimeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`tfm serve ${args.join(' ')} exited (${code}) before it was ready\n${stderr}`));
    });
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const m = /^tfm serve: listening on (http:\/\/127\.0\.0\.1:(\d+))$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve({ base: m[1], child, stop, stderr: () => stderr });
      }
    });
  });
}

// Reads an SSE response body (fetch) as it comes: calls onEvent(parsed JSON or '[DONE]') for each event.
export async function readSse(res, onEvent) {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (onEvent(data === '[DONE]' ? '[DONE]' : JSON.parse(data)) === false) return;
      }
    }
  }
}

// The first sentences of a KJV verse list: deterministic prompts of a few words.
export function kjvPrompts(count, { skip = 1000, step = 97 } = {}) {
  const lines = readFileSync(join(SHARED, 'data', 'kjv', 'kjv.txt'), 'utf8').split('\n').filter((l) => l.trim());
  const prompts = [];
  for (let i = 0; prompts.length < count; ++i) {
    const words = lines[(skip + i * step) % lines.length].split(' ');
    prompts.push(words.slice(0, 3 + (i % 5)).join(' '));
  }
  return prompts;
}

export function englishTest() {
  return readFileSync(join(SHARED, 'data', 'bible-en-es', 'test.tsv'), 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t')[0]);
}
