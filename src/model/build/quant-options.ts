/**
 * Quantisation choices of a build beyond the weight dtype (docs/model-build.md §Quantisation): int8
 * activations for the int4 MatMulNBits layers (`accuracy_level` 4) and the weights of the vision encoder's
 * Linear layers. Pure; the choice is recorded in the manifest (`quantization`).
 */
import { ACTIVATION_DTYPES, VISION_DTYPES, type ActivationDtype, type Quantization, type VisionDtype } from '../manifest.js';
import type { LinearOptions, WeightDtype } from './linear.js';

export interface QuantizationRequest {
  activations?: string;
  vision?: string;
}

/** Today's build for `dtype` when nothing else is asked: fp32 activations, vision stored like the decoder's non-Linear tensors. */
export function defaultQuantization(dtype: WeightDtype): Quantization {
  return { activations: 'fp32', vision: dtype === 'fp32' ? 'fp32' : 'fp16' };
}

/** Validates a request against the weight dtype; RangeError (a usage error) names what is allowed. */
export function resolveQuantization(dtype: WeightDtype, req: QuantizationRequest = {}): Quantization {
  const base = defaultQuantization(dtype);
  const activations = (req.activations ?? base.activations) as ActivationDtype;
  const vision = (req.vision ?? base.vision) as VisionDtype;
  if (!ACTIVATION_DTYPES.includes(activations)) throw new RangeError(`--activations must be ${ACTIVATION_DTYPES.join(' or ')} (got ${req.activations})`);
  if (!VISION_DTYPES.includes(vision)) throw new RangeError(`--vision must be ${VISION_DTYPES.join(', ')} (got ${req.vision})`);
  if (activations === 'int8' && dtype !== 'int4' && vision !== 'int4') {
    throw new RangeError('--activations int8 applies to int4 (MatMulNBits) layers: use it with --dtype int4 or --vision int4');
  }
  return { activations, vision };
}

/** How one graph's Linear layers are emitted under `q` (decoder: the build's dtype; vision: `q.vision`). */
export function graphLinear(q: Quantization, part: 'vision' | 'decoder', dtype: WeightDtype): { dtype: WeightDtype; opts: LinearOptions } {
  const d: WeightDtype = part === 'vision' ? q.vision : dtype;
  return { dtype: d, opts: d === 'int4' && q.activations === 'int8' ? { accuracyLevel: 4 } : {} };
}
