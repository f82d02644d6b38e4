/**
 * AI Transparency on FHIR (HL7 EHR WG, http://hl7.org/fhir/uv/aitransparency): AIAST security label,
 * AIconfidence extension, the AI Device and the AI Provenance. Plain R4 resources; no meta.profile is
 * claimed, so servers without the IG loaded still accept them.
 */
import type { Device, Extension, Meta, Provenance, Reference } from 'fhir/r4.js';
import type { ExamContext, ModelIdentity } from '../findings/types.js';
import {
  AIAST, AI_CONFIDENCE_URL, AI_DEVICE_TYPE, AI_KIND_URL, AI_KIND_VLM, HTEST, PROVENANCE_AUTHOR, RANDOM_WEIGHTS_BANNER,
  RANDOM_WEIGHTS_TAG,
} from './codes.js';

/** meta for a resource written by AI: AIAST always; test-data tags when the model has random weights. */
export function aiMeta(model: ModelIdentity): Meta {
  return model.random ? { security: [{ ...AIAST }], tag: [{ ...HTEST }, { ...RANDOM_WEIGHTS_TAG }] } : { security: [{ ...AIAST }] };
}

/** meta for a resource about the AI (Device, Provenance): test tags only. */
export function testMeta(model: ModelIdentity): Meta | undefined {
  return model.random ? { tag: [{ ...HTEST }, { ...RANDOM_WEIGHTS_TAG }] } : undefined;
}

/** AIconfidence as a probability (valueDecimal 0–1, 4 decimals). */
export function confidenceExtension(p: number): Extension {
  return { url: AI_CONFIDENCE_URL, valueDecimal: Math.round(Math.min(1, Math.max(0, p)) * 10_000) / 10_000 };
}

/** The AI Device: model name, version, manifest checksum and execution provider. */
export function buildAiDevice(model: ModelIdentity): Device {
  const name = model.random ? `${model.name} (${RANDOM_WEIGHTS_BANNER})` : model.name;
  const device: Device = {
    resourceType: 'Device',
    extension: [{ url: AI_KIND_URL, valueCodeableConcept: { coding: [{ ...AI_KIND_VLM }] } }],
    identifier: [{ system: 'urn:volmo-cds:model-manifest-sha256', value: model.manifestSha256 }],
    status: 'active',
    deviceName: [{ name, type: 'model-name' }],
    modelNumber: model.name,
    type: { coding: [{ ...AI_DEVICE_TYPE }], text: 'AI vision-language model' },
    version: [{ value: model.version }],
    property: [
      { type: { text: 'model manifest sha256' }, valueCode: [{ text: model.manifestSha256 }] },
      { type: { text: 'execution provider' }, valueCode: [{ text: model.executionProvider }] },
      { type: { text: 'random weights (test model)' }, valueCode: [{ text: model.random ? 'true' : 'false' }] },
    ],
    note: model.random ? [{ text: RANDOM_WEIGHTS_BANNER }] : undefined,
  };
  const meta = testMeta(model);
  return meta ? { ...device, meta } : device;
}

export interface ProvenanceInput {
  model: ModelIdentity;
  context: ExamContext;
  device: Reference;
  targets: Reference[];
  /** When the record was made (ISO instant). */
  recorded: string;
}

/** Provenance: the AI Device as author; entities = ImagingStudies and notes the model saw. */
export function buildAiProvenance(input: ProvenanceInput): Provenance {
  const { context, model } = input;
  const entity = [
    ...context.imagingStudies.map((reference) => ({ role: 'source' as const, what: { reference } })),
    ...context.notes.map((reference) => ({ role: 'source' as const, what: { reference } })),
  ];
  const prov: Provenance = {
    resourceType: 'Provenance',
    target: input.targets,
    occurredDateTime: context.effectiveDateTime,
    recorded: input.recorded,
    reason: [{ coding: [{ ...AIAST }] }],
    agent: [{
      type: { coding: [{ ...PROVENANCE_AUTHOR }] },
      role: [{ coding: [{ ...AI_DEVICE_TYPE }] }],
      who: { ...input.device, display: `${model.name} ${model.version}` },
    }],
    entity: entity.length > 0 ? entity : undefined,
  };
  const meta = testMeta(model);
  return meta ? { ...prov, meta } : prov;
}
