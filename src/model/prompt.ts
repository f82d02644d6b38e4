/**
 * Prompt assembly exactly as InternVL's `chat()` / conversation.py and VOLMO's inference runner build it
 * (volmo-model.md 1.2, 3.6). Pure string functions; tokenisation (with BOS) happens in the tokenizer.
 */
import { AppError } from '../errors.js';

export type ChatTemplate = 'internlm2-chat' | 'internvl2_5';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

export const IMAGE_PLACEHOLDER = '<image>';
export const IMG_START = '<img>';
export const IMG_END = '</img>';
export const IMG_CONTEXT = '<IMG_CONTEXT>';

/** Default system messages of conversation.py (used when config.json has no system_message). */
export const DEFAULT_SYSTEM_MESSAGES: Readonly<Record<ChatTemplate, string>> = {
  'internlm2-chat': '你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。',
  internvl2_5: '你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。',
};

interface TemplateSpec {
  system: (msg: string) => string;
  roles: Record<ChatTurn['role'], string>;
  sep: string;
}

// Both are sep_style MPT: system + sep, then role + message + sep per turn, a bare role for the open turn.
const TEMPLATES: Record<ChatTemplate, TemplateSpec> = {
  'internlm2-chat': {
    system: (m) => `<|im_start|>system\n${m}`,
    roles: { user: '<|im_start|>user\n', assistant: '<|im_start|>assistant\n' },
    sep: '<|im_end|>',
  },
  internvl2_5: {
    system: (m) => `<|im_start|>system\n${m}`,
    roles: { user: '<|im_start|>user\n', assistant: '<|im_start|>assistant\n' },
    sep: '<|im_end|>\n',
  },
};

/** A prompt cannot be built (unknown template, image/tag mismatch). */
export class PromptError extends AppError {
  constructor(message: string) {
    super('bad_request', message);
    this.name = 'PromptError';
  }
}

export function isChatTemplate(name: unknown): name is ChatTemplate {
  return typeof name === 'string' && Object.hasOwn(TEMPLATES, name);
}

/**
 * The one token generation stops on: InternVL's chat() passes `eos_token_id = convert_tokens_to_ids(template.sep.strip())`
 * to generate(), which replaces the model's own eos (`</s>` does not stop it). `<|im_end|>` for both templates.
 */
export function stopTokenOf(template: ChatTemplate): string {
  return TEMPLATES[template].sep.trim();
}

export function renderChat(
  template: ChatTemplate,
  systemMessage: string,
  turns: readonly ChatTurn[],
  opts: { addGenerationPrompt: boolean },
): string {
  if (!isChatTemplate(template)) throw new PromptError(`unsupported chat template ${JSON.stringify(template)}`);
  const t = TEMPLATES[template];
  let out = t.system(systemMessage) + t.sep;
  for (const turn of turns) {
    const role = t.roles[turn.role];
    if (role === undefined || typeof turn.content !== 'string') throw new PromptError('chat turns need role user|assistant and string content');
    // conversation.py MPT: an empty message renders as the bare role (an open turn).
    out += turn.content ? role + turn.content + t.sep : role;
  }
  if (opts.addGenerationPrompt) out += t.roles.assistant;
  return out;
}

function countPlaceholders(text: string): number {
  return text.split(IMAGE_PLACEHOLDER).length - 1;
}

/**
 * Adds `<image>` tags the way VOLMO does: one image and no tag -> `<image>\n` + question (chat());
 * several images and fewer tags than images -> `Image-1: <image>\nImage-2: <image>\n...` + question (the runner).
 */
export function insertImagePlaceholders(question: string, imageCount: number): string {
  if (!Number.isInteger(imageCount) || imageCount < 0) throw new PromptError('image count must be a non-negative integer');
  const tags = countPlaceholders(question);
  if (imageCount === 1 && tags === 0) return `${IMAGE_PLACEHOLDER}\n${question}`;
  if (imageCount > 1 && tags < imageCount) {
    let prefix = '';
    for (let i = 1; i <= imageCount; i++) prefix += `Image-${i}: ${IMAGE_PLACEHOLDER}\n`;
    return prefix + question;
  }
  return question;
}

/** Replaces the i-th `<image>` with `<img>` + `<IMG_CONTEXT>` x (tokensPerTile * tileCounts[i]) + `</img>`. */
export function expandImages(text: string, tileCounts: readonly number[], tokensPerTile = 256): string {
  if (!Number.isInteger(tokensPerTile) || tokensPerTile <= 0) throw new PromptError('tokensPerTile must be a positive integer');
  const parts = text.split(IMAGE_PLACEHOLDER);
  if (parts.length - 1 !== tileCounts.length) {
    throw new PromptError(`prompt has ${parts.length - 1} ${IMAGE_PLACEHOLDER} tags but ${tileCounts.length} images were given`);
  }
  let out = parts[0];
  tileCounts.forEach((tiles, i) => {
    if (!Number.isInteger(tiles) || tiles <= 0) throw new PromptError(`image ${i + 1} has an invalid tile count ${tiles}`);
    out += IMG_START + IMG_CONTEXT.repeat(tokensPerTile * tiles) + IMG_END + parts[i + 1];
  });
  return out;
}

export interface VolmoPromptInput {
  template: ChatTemplate;
  systemMessage: string;
  question: string;
  /** Tiles per image, in order (empty for a text-only question). */
  tileCounts: readonly number[];
  tokensPerTile?: number;
  /** Earlier turns (VOLMO's evaluation sends every question without history). */
  history?: readonly ChatTurn[];
}

export interface VolmoPrompt {
  /** The full prompt text; encode it WITH BOS (InternLM2 add_bos_token=true). */
  text: string;
  /**
   * `text` split after the last `</img>` (a special token, so ids(prefix) ++ ids(rest, no BOS) == ids(text)):
   * the image prefix can be prefilled once and reused for every question about the same images.
   * `prefix` is '' when there are no images.
   */
  prefix: string;
  rest: string;
}

/** The single-turn (or with history) prompt that VOLMO's `model.chat()` builds for a question and its images. */
export function buildVolmoPrompt(input: VolmoPromptInput): VolmoPrompt {
  const { template, systemMessage, tileCounts, history = [] } = input;
  // chat() only inserts the tag on a fresh conversation; multi-image tags come from the runner either way —
  // unless an earlier turn already carries the images' tags (they travel once, in the first user turn).
  const tagged = history.some((t) => countPlaceholders(t.content) > 0);
  const question = !tagged && (history.length === 0 || tileCounts.length > 1)
    ? insertImagePlaceholders(input.question, tileCounts.length)
    : input.question;
  const turns: ChatTurn[] = [...history, { role: 'user', content: question }];
  const rendered = renderChat(template, systemMessage, turns, { addGenerationPrompt: true });
  const text = expandImages(rendered, tileCounts, input.tokensPerTile ?? 256);
  const cut = text.lastIndexOf(IMG_END);
  if (cut < 0) return { text, prefix: '', rest: text };
  return { text, prefix: text.slice(0, cut + IMG_END.length), rest: text.slice(cut + IMG_END.length) };
}
