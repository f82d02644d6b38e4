/**
 * Minimal reader for SentencePiece `tokenizer.model` files (protobuf `sentencepiece.ModelProto`, proto2).
 * Only the fields a tokenizer.json conversion needs are decoded; unknown fields are skipped.
 * Field numbers from sentencepiece_model.proto.
 */
import { TokenizerError } from './errors.js';

export type PieceType = 'normal' | 'unknown' | 'control' | 'user_defined' | 'unused' | 'byte';
export type SpModelType = 'unigram' | 'bpe' | 'word' | 'char';

export interface SpPiece {
  piece: string;
  score: number;
  type: PieceType;
}

export interface SentencePieceModel {
  pieces: SpPiece[];
  trainer: {
    modelType: SpModelType;
    byteFallback: boolean;
    unkId: number;
    bosId: number;
    eosId: number;
    padId: number;
    unkPiece: string;
    bosPiece: string;
    eosPiece: string;
    padPiece: string;
    userDefinedSymbols: string[];
    controlSymbols: string[];
  };
  normalizer: {
    name: string;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
    hasPrecompiledCharsmap: boolean;
  };
}

const PIECE_TYPES: Record<number, PieceType> = {
  1: 'normal', 2: 'unknown', 3: 'control', 4: 'user_defined', 5: 'unused', 6: 'byte',
};
const MODEL_TYPES: Record<number, SpModelType> = { 1: 'unigram', 2: 'bpe', 3: 'word', 4: 'char' };

interface Field {
  num: number;
  wire: number;
  /** varint value (low 32 bits as unsigned, exact for values < 2^53 in `value`). */
  value: number;
  low32: number;
  bytes?: Uint8Array;
  float?: number;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function* fields(buf: Uint8Array, what: string): Generator<Field> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const fail = (msg: string): never => {
    throw new TokenizerError(`tokenizer.model is not a valid SentencePiece model (${what}: ${msg} at byte ${pos})`);
  };
  const varint = (): [number, number] => {
    let value = 0;
    let low = 0;
    for (let shift = 0; ; shift += 7) {
      if (pos >= buf.length) fail('truncated varint');
      if (shift > 63) fail('varint too long');
      const b = buf[pos++];
      value += (b & 0x7f) * 2 ** shift;
      if (shift < 32) low = (low | ((b & 0x7f) << shift)) >>> 0;
      if (b < 0x80) return [value, low];
    }
  };
  while (pos < buf.length) {
    const [tag] = varint();
    const num = Math.floor(tag / 8);
    const wire = tag & 7;
    if (num === 0) fail('field number 0');
    if (wire === 0) {
      const [value, low32] = varint();
      yield { num, wire, value, low32 };
    } else if (wire === 1) {
      if (pos + 8 > buf.length) fail('truncated fixed64');
      pos += 8;
    } else if (wire === 2) {
      const [len] = varint();
      if (pos + len > buf.length) fail('truncated length-delimited field');
      const bytes = buf.subarray(pos, pos + len);
      pos += len;
      yield { num, wire, value: len, low32: len, bytes };
    } else if (wire === 5) {
      if (pos + 4 > buf.length) fail('truncated fixed32');
      const float = view.getFloat32(pos, true);
      pos += 4;
      yield { num, wire, value: 0, low32: 0, float };
    } else {
      fail(`unsupported wire type ${wire}`);
    }
  }
}

function str(f: Field, what: string): string {
  if (!f.bytes) throw new TokenizerError(`tokenizer.model: ${what} is not a string`);
  try {
    return utf8.decode(f.bytes);
  } catch (cause) {
    throw new TokenizerError(`tokenizer.model: ${what} is not valid UTF-8`, { cause });
  }
}

const int32 = (f: Field): number => f.low32 | 0;

function parsePiece(buf: Uint8Array): SpPiece {
  let piece: string | undefined;
  let score = 0;
  let type: PieceType = 'normal';
  for (const f of fields(buf, 'piece')) {
    if (f.num === 1) piece = str(f, 'piece');
    else if (f.num === 2 && f.float !== undefined) score = f.float;
    else if (f.num === 3 && f.wire === 0) {
      const t = PIECE_TYPES[f.value];
      if (!t) throw new TokenizerError(`tokenizer.model: unknown piece type ${f.value}`);
      type = t;
    }
  }
  if (piece === undefined) throw new TokenizerError('tokenizer.model: a piece has no string');
  return { piece, score, type };
}

export function parseSentencePieceModel(bytes: Uint8Array): SentencePieceModel {
  const pieces: SpPiece[] = [];
  const trainer: SentencePieceModel['trainer'] = {
    modelType: 'unigram', byteFallback: false, unkId: 0, bosId: 1, eosId: 2, padId: -1,
    unkPiece: '<unk>', bosPiece: '<s>', eosPiece: '</s>', padPiece: '<pad>',
    userDefinedSymbols: [], controlSymbols: [],
  };
  const normalizer: SentencePieceModel['normalizer'] = {
    name: '', addDummyPrefix: true, removeExtraWhitespaces: true, escapeWhitespaces: true,
    hasPrecompiledCharsmap: false,
  };
  let sawTrainer = false;
  for (const f of fields(bytes, 'ModelProto')) {
    if (f.num === 1 && f.bytes) pieces.push(parsePiece(f.bytes));
    else if (f.num === 2 && f.bytes) {
      sawTrainer = true;
      for (const t of fields(f.bytes, 'TrainerSpec')) {
        switch (t.num) {
          case 3: {
            const mt = MODEL_TYPES[t.value];
            if (!mt) throw new TokenizerError(`tokenizer.model: unknown model type ${t.value}`);
            trainer.modelType = mt;
            break;
          }
          case 35: trainer.byteFallback = t.value !== 0; break;
          case 40: trainer.unkId = int32(t); break;
          case 41: trainer.bosId = int32(t); break;
          case 42: trainer.eosId = int32(t); break;
          case 43: trainer.padId = int32(t); break;
          case 45: trainer.unkPiece = str(t, 'unk_piece'); break;
          case 46: trainer.bosPiece = str(t, 'bos_piece'); break;
          case 47: trainer.eosPiece = str(t, 'eos_piece'); break;
          case 48: trainer.padPiece = str(t, 'pad_piece'); break;
          case 30: trainer.controlSymbols.push(str(t, 'control_symbols')); break;
          case 31: trainer.userDefinedSymbols.push(str(t, 'user_defined_symbols')); break;
          default: break;
        }
      }
    } else if (f.num === 3 && f.bytes) {
      for (const n of fields(f.bytes, 'NormalizerSpec')) {
        if (n.num === 1) normalizer.name = str(n, 'normalizer name');
        else if (n.num === 2) normalizer.hasPrecompiledCharsmap = (n.bytes?.length ?? 0) > 0;
        else if (n.num === 3) normalizer.addDummyPrefix = n.value !== 0;
        else if (n.num === 4) normalizer.removeExtraWhitespaces = n.value !== 0;
        else if (n.num === 5) normalizer.escapeWhitespaces = n.value !== 0;
      }
    }
  }
  if (pieces.length === 0 || !sawTrainer) {
    throw new TokenizerError('tokenizer.model is not a valid SentencePiece model (no pieces or no trainer spec)');
  }
  return { pieces, trainer, normalizer };
}
