import { AppError } from '../../errors.js';

/** A tokenizer file (tokenizer.model, tokenizer_config.json, tokenizer.json) is missing, corrupt or unsupported. */
export class TokenizerError extends AppError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('config_invalid', message, { ...options, expose: false });
    this.name = 'TokenizerError';
  }
}
