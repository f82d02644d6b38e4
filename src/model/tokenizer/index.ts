export { convertTokenizer, convertSentencePiece, deriveMerges } from './convert.js';
export type { ConvertedTokenizer, AddedTokenSpec } from './convert.js';
export { parseSentencePieceModel } from './sentencepiece-model.js';
export type { SentencePieceModel, SpPiece, PieceType, SpModelType } from './sentencepiece-model.js';
export { Tokenizer, loadTokenizer } from './tokenizer.js';
export type { EncodeOptions, DecodeOptions } from './tokenizer.js';
export { TokenizerError } from './errors.js';
