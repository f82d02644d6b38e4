/**
 * Opens a built model directory (docs/dev/model-contract.md): manifest, file checks, sessions and the
 * tokenizer. Every failure becomes a ModelLoadError whose reason `/readyz` can show.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../log.js';
import { readManifest, verifyModelFiles, type Manifest } from '../manifest.js';
import { loadTokenizer, type Tokenizer } from '../tokenizer/index.js';
import { isChatTemplate, type ChatTemplate } from '../prompt.js';
import { ModelLoadError } from './load-error.js';
import { openSession, type ExecutionProvider, type ModelSession } from './onnx-session.js';
import { layerNamerFrom } from './kv.js';
import type { DecoderSpec } from './generate.js';
import type { ModelInfo } from './types.js';

export interface LoadedModel {
  manifest: Manifest;
  template: ChatTemplate;
  info: ModelInfo;
  spec: DecoderSpec;
  vision: ModelSession;
  decoder: ModelSession;
  tokenizer: Tokenizer;
}

export interface OpenModelOptions {
  executionProvider: ExecutionProvider;
  threads: number;
  verifyChecksums: boolean;
  log: Logger;
}

function manifestOf(modelDir: string): { manifest: Manifest; sha256: string } {
  try {
    const manifest = readManifest(modelDir);
    const sha256 = createHash('sha256').update(readFileSync(join(modelDir, 'manifest.json'))).digest('hex');
    return { manifest, sha256 };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    const missing = /missing/.test(msg);
    throw new ModelLoadError(missing ? 'missing_file' : 'invalid_manifest', `${modelDir}: ${msg}`, { file: 'manifest.json', cause: err });
  }
}

export function decoderSpecOf(m: Manifest): DecoderSpec {
  const p = m.graphs.decoder.layerNamePatterns;
  return {
    layers: m.llm.layers,
    kvHeads: m.llm.kvHeads,
    headDim: m.llm.headDim,
    vocab: m.llm.vocab,
    hidden: m.llm.hidden,
    padId: m.tokens.pad,
    imgContextId: m.tokens.imgContext,
    // InternLM2's plain rope has no length limit; dynamic NTK changes the base past max_position_embeddings
    ...(m.llm.ropeScaling?.type === 'dynamic' ? { maxPositions: m.llm.maxPositions } : {}),
    name: layerNamerFrom({
      prefix_key: p.prefixKey, prefix_value: p.prefixValue, past_key: p.pastKey,
      past_value: p.pastValue, present_key: p.presentKey, present_value: p.presentValue,
    }),
  };
}

function checkIo(session: ModelSession, graph: { file: string; inputs: string[]; outputs: string[] }): void {
  const missing = [
    ...graph.inputs.filter((n) => !session.inputNames.includes(n)),
    ...graph.outputs.filter((n) => !session.outputNames.includes(n)),
  ];
  if (missing.length) {
    throw new ModelLoadError('graph_mismatch', `${graph.file} lacks tensors named in the manifest: ${missing.slice(0, 6).join(', ')}`, { file: graph.file });
  }
}

export async function openModelDir(modelDir: string, opts: OpenModelOptions): Promise<LoadedModel> {
  const { manifest, sha256 } = manifestOf(modelDir);
  if (!isChatTemplate(manifest.template)) {
    throw new ModelLoadError('invalid_manifest', `unsupported chat template ${JSON.stringify(manifest.template)}`, { file: 'manifest.json' });
  }
  const problems = await verifyModelFiles(modelDir, manifest, { checksums: opts.verifyChecksums });
  if (problems.length) {
    const p = problems[0];
    const reason = p.problem === 'missing' ? 'missing_file' : 'checksum_mismatch';
    const what = p.problem === 'missing' ? 'is missing' : p.problem === 'size' ? 'has the wrong size' : 'does not match its sha256';
    throw new ModelLoadError(reason, `model file ${p.file} ${what} (manifest.json)`, { file: p.file });
  }
  const sessionOpts = { executionProvider: opts.executionProvider, log: opts.log, threads: opts.threads, keepOnDevice: ['present_*'] };
  const vision = await openSession(join(modelDir, manifest.graphs.vision.file), { ...sessionOpts, keepOnDevice: [] });
  const decoder = await openSession(join(modelDir, manifest.graphs.decoder.file), sessionOpts);
  checkIo(vision, manifest.graphs.vision);
  checkIo(decoder, manifest.graphs.decoder);
  let tokenizer: Tokenizer;
  try {
    tokenizer = await loadTokenizer(modelDir);
  } catch (err) {
    throw new ModelLoadError('missing_file', `tokenizer: ${err instanceof Error ? err.message : String(err)}`, { file: 'tokenizer.json', cause: err });
  }
  const info: ModelInfo = {
    name: manifest.modelName,
    version: manifest.modelVersion,
    random: manifest.random,
    manifestSha256: sha256,
    executionProvider: decoder.executionProvider,
    dtype: manifest.dtype,
  };
  return { manifest, template: manifest.template, info, spec: decoderSpecOf(manifest), vision, decoder, tokenizer };
}
