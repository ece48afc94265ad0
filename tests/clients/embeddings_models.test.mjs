// POST /v1/embeddings (float and base64, single and batched inputs) and GET /v1/models through the client.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LM, MT, client, lmConfig, lmScores, postJson } from './lib/harness.mjs';

const openai = client();
const width = lmConfig().n_embd;
const scores = lmScores().greedy;

const asFloat32 = (v) => Array.from(v, (x) => Math.fround(x));

describe('embeddings', () => {
  const input = 'In the beginning God created the heaven and the earth.';

  test(`float and base64 (the client's default) give the same ${width} numbers`, async () => {
    const f = await openai.embeddings.create({ model: LM, input, encoding_format: 'float' });
    assert.equal(f.object, 'list');
    assert.equal(f.model, LM);
    assert.equal(f.data.length, 1);
    assert.equal(f.data[0].object, 'embedding');
    assert.equal(f.data[0].index, 0);
    const floats = f.data[0].embedding;
    assert.ok(Array.isArray(floats), 'encoding_format float: a JSON array');
    assert.equal(floats.length, width);
    assert.ok(floats.every(Number.isFinite));
    assert.ok(floats.some((x) => x !== 0), 'not all zeros');
    assert.ok(f.usage.prompt_tokens > 0);
    assert.equal(f.usage.total_tokens, f.usage.prompt_tokens);

    const b = await openai.embeddings.create({ model: LM, input });  // base64 on the wire, decoded by the client
    assert.equal(b.data[0].embedding.length, width);
    assert.deepEqual(asFloat32(b.data[0].embedding), asFloat32(floats), 'base64 and float encode the same float32 vector');

    // Raw base64: little-endian float32 bytes.
    const raw = await postJson('/v1/embeddings', { model: LM, input, encoding_format: 'base64' });
    assert.equal(typeof raw.data[0].embedding, 'string');
    const bytes = Buffer.from(raw.data[0].embedding, 'base64');
    assert.equal(bytes.length, width * 4);
    const decoded = Array.from({ length: width }, (_, i) => bytes.readFloatLE(i * 4));
    assert.deepEqual(decoded, asFloat32(floats));
  });

  test('the same input twice gives the same vector; different inputs differ', async () => {
    const a = await openai.embeddings.create({ model: LM, input, encoding_format: 'float' });
    const a2 = await openai.embeddings.create({ model: LM, input, encoding_format: 'float' });
    const c = await openai.embeddings.create({ model: LM, input: 'Jesus wept.', encoding_format: 'float' });
    assert.deepEqual(a2.data[0].embedding, a.data[0].embedding);
    assert.notDeepEqual(c.data[0].embedding, a.data[0].embedding);
  });

  test('a batch (string[]) returns one embedding per input with its index, each equal to its solo vector', async () => {
    const inputs = scores.map((s) => s.prompt);
    const batch = await openai.embeddings.create({ model: LM, input: inputs, encoding_format: 'float' });
    assert.equal(batch.data.length, inputs.length);
    assert.deepEqual(batch.data.map((d) => d.index), inputs.map((_, i) => i));
    for (const [i, text] of inputs.entries()) {
      const solo = await openai.embeddings.create({ model: LM, input: text, encoding_format: 'float' });
      assert.deepEqual(batch.data[i].embedding, solo.data[0].embedding, `input ${i}`);
    }
    assert.equal(batch.usage.prompt_tokens, scores.reduce((n, s) => n + s.prompt_ids.length, 0));
  });

  test('token-id inputs (int[] and int[][]) equal the text inputs', async () => {
    const text = await openai.embeddings.create({ model: LM, input: scores[0].prompt, encoding_format: 'float' });
    const ids = await openai.embeddings.create({ model: LM, input: scores[0].prompt_ids, encoding_format: 'float' });
    assert.deepEqual(ids.data[0].embedding, text.data[0].embedding);
    const many = await openai.embeddings.create({ model: LM, input: scores.slice(0, 2).map((s) => s.prompt_ids), encoding_format: 'float' });
    assert.equal(many.data.length, 2);
    assert.deepEqual(many.data[0].embedding, text.data[0].embedding);
  });
});

describe('models', () => {
  test('models.list() lists the loaded models by folder name', async () => {
    const ids = [];
    for await (const m of openai.models.list()) {
      assert.equal(m.object, 'model');
      assert.equal(typeof m.created, 'number');
      assert.equal(typeof m.owned_by, 'string');
      ids.push(m.id);
    }
    assert.deepEqual(ids.slice().sort(), [LM, MT].sort());
  });
});
