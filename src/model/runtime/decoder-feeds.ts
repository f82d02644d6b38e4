/**
 * Pure construction of the decoder's non-KV inputs (ids, positions, attention mask) for B rows that
 * may have different prefix and question lengths: rows are left-padded and padding is masked out.
 */
import { AppError } from '../../errors.js';
import { int64, type TensorLike } from './tensor.js';

export interface FeedRow {
  /** Valid prefix positions of this row (<= the batch's padded prefix length). */
  prefixLen: number;
  /** Valid past positions (tokens after the prefix already in the past KV). */
  pastLen: number;
  /** New token ids of this run. */
  ids: readonly number[];
}

export interface StepFeeds {
  input_ids: TensorLike;
  position_ids: TensorLike;
  attention_mask: TensorLike;
}

/**
 * Layout of each row: [pad][prefix] [pad][past] [pad][new ids]. Positions count valid tokens only, so
 * a row's first new token sits at prefixLen + pastLen whatever the padding. `minPrefixWidth` widens the
 * prefix part (with masked positions) to the width of the prefix KV actually fed.
 */
export function stepFeeds(rows: readonly FeedRow[], padId: number, minPrefixWidth = 0): StepFeeds {
  if (rows.length === 0) throw new AppError('internal', 'stepFeeds: no rows');
  const P = Math.max(minPrefixWidth, ...rows.map((r) => r.prefixLen));
  const G = Math.max(...rows.map((r) => r.pastLen));
  const T = Math.max(...rows.map((r) => r.ids.length));
  if (T === 0) throw new AppError('internal', 'stepFeeds: a run needs at least one new token');
  const ids: number[] = [];
  const pos: number[] = [];
  const mask: number[] = [];
  for (const r of rows) {
    const padT = T - r.ids.length;
    for (let i = 0; i < padT; i++) ids.push(padId);
    ids.push(...r.ids);
    const start = r.prefixLen + r.pastLen;
    for (let i = 0; i < padT; i++) pos.push(0);
    for (let i = 0; i < r.ids.length; i++) pos.push(start + i);
    pushMask(mask, P, r.prefixLen);
    pushMask(mask, G, r.pastLen);
    pushMask(mask, T, r.ids.length);
  }
  const B = rows.length;
  return {
    input_ids: int64(ids, [B, T]),
    position_ids: int64(pos, [B, T]),
    attention_mask: int64(mask, [B, P + G + T]),
  };
}

function pushMask(mask: number[], width: number, valid: number): void {
  for (let i = 0; i < width - valid; i++) mask.push(0);
  for (let i = 0; i < valid; i++) mask.push(1);
}

/** Number of occurrences of `id` in `ids` (image-context positions that take `image_embeds` rows). */
export function countId(ids: readonly number[], id: number): number {
  let n = 0;
  for (const x of ids) if (x === id) n++;
  return n;
}
