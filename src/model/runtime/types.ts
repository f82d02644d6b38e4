/** The runtime's public types: what the rest of the product passes to and gets from the engine. */
import type { Logger } from '../../log.js';
import type { ExecutionProvider } from './onnx-session.js';

export interface ModelInfo {
  name: string;
  version: string;
  /** True for test/bench models with random weights: every output must be labelled NOT clinical. */
  random: boolean;
  /** sha256 of manifest.json. */
  manifestSha256: string;
  /** The execution provider in use after any fallback. */
  executionProvider: ExecutionProvider;
  dtype: string;
}

/** An image as the model takes it: ImageNet-normalised tiles [tileCount,3,S,S] in CHW order (from src/model/preprocess/). */
export interface ImageTiles {
  tiles: Float32Array;
  tileCount: number;
}

/** Encoded image bytes (JPEG/PNG) or already preprocessed tiles. */
export type ExamImage = Uint8Array | ImageTiles;

/** `choice`: a single forward step scores the candidates (e.g. TRUE/FALSE, 0..4); `text`: greedy decoding. */
export type AnswerSpec =
  | { kind: 'choice'; candidates: string[] }
  /** `topLogprobs`: report each generated token's log-probability and the `topLogprobs` likeliest alternatives (0..20). */
  | { kind: 'text'; maxNewTokens?: number; topLogprobs?: number };

/** One generated token's log-probability (log-softmax over the full vocabulary) and its likeliest alternatives. */
export interface TokenLogprob {
  tokenId: number;
  token: string;
  logprob: number;
  top: { tokenId: number; token: string; logprob: number }[];
}

export interface Question {
  id: string;
  /** The user turn as VOLMO phrases it (with or without `<image>` tags). */
  text: string;
  answer: AnswerSpec;
  /**
   * Earlier turns of the same conversation (multi-step reasoning: VOLMO's assessment-and-plan steps see
   * the previous questions and answers). The images' `<image>` tags, if any, belong to the first user turn.
   */
  history?: { role: 'user' | 'assistant'; content: string }[];
}

export interface ExamInput {
  images: ExamImage[];
  /** Overrides the manifest's system message. */
  systemMessage?: string;
  /** Overrides the manifest's maximum tiles per image (VOLMO evaluates with 6, + thumbnail). */
  maxTiles?: number;
  questions: Question[];
}

export interface CandidateScore {
  label: string;
  tokenId: number;
  /** Softmax over the full vocabulary at the answer position; candidates sum to <= 1. */
  probability: number;
}

export interface Answer {
  id: string;
  text: string;
  tokenIds: number[];
  stopReason: 'stop_token' | 'max_new_tokens' | 'max_positions' | 'single_step';
  candidates?: CandidateScore[];
  choice?: string;
  /** Per generated token, for text questions that asked for `topLogprobs`. */
  logprobs?: TokenLogprob[];
  /** Whether the unconstrained greedy first token is one of the candidates (false = the model "wanted" to say something else). */
  greedyIsCandidate?: boolean;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Time budget of this request; the engine default applies when absent. */
  timeoutMs?: number;
}

export interface GenerateInput {
  images: ExamImage[];
  systemMessage?: string;
  prompt: string;
  maxNewTokens?: number;
}

export type EngineStatus =
  | { state: 'ready'; info: ModelInfo; busyWorkers: number; queued: number }
  /** Every worker died and none could be replaced (each replacement reloads the model). */
  | { state: 'unavailable'; info: ModelInfo; reason: string }
  | { state: 'closed' };

export interface VlmEngine {
  readonly info: ModelInfo;
  /** Many questions about the same images; the shared prompt prefix is computed once. */
  exam(input: ExamInput, options?: RunOptions): Promise<Answer[]>;
  /** One free-text prompt. */
  generate(input: GenerateInput, options?: RunOptions): Promise<Answer>;
  status(): EngineStatus;
  close(): Promise<void>;
}

export interface EngineOptions {
  modelDir: string;
  executionProvider?: ExecutionProvider;
  /** Worker threads, each with its own sessions (default 1). */
  workers?: number;
  /** Requests waiting for a worker beyond which new ones are refused (default 16). */
  queueLimit?: number;
  /** Default per-request time budget (default 120 s). */
  timeoutMs?: number;
  /** After a cancel, how long a worker may take to stop before it is terminated and replaced (default 5 s). */
  cancelGraceMs?: number;
  /** ORT intra-op threads per worker (default: cores / workers; 0 = ORT's default, all cores). */
  threadsPerWorker?: number;
  /** Most pending requests sent to a worker together so their single-step questions share runs (default 4). */
  batchRequests?: number;
  /** Check sha256 of every model file at load (default true). */
  verifyChecksums?: boolean;
  log: Logger;
  /** Module (URL) exporting `loadBackend`; defaults to the ONNX backend. Tests pass a scripted one. */
  backendModule?: string;
}
