/** Image references found in FHIR, before anything is fetched. */
import type { Eye } from '../evidence/types.js';

export type DicomModality = 'OP' | 'OPT';

export type ImageSource =
  | {
      readonly kind: 'dicomweb';
      /** Endpoint.address as found (a WADO-RS base or a study URL); absent = use the configured PACS. */
      readonly endpoint?: string;
      readonly study: string;
      readonly series?: string;
      /** Absent: the series (or study) lists no instances; they are found with QIDO-RS. */
      readonly instance?: string;
      readonly sopClass?: string;
    }
  | {
      readonly kind: 'attachment';
      /** Absolute or FHIR-relative URL ('Binary/x'); absent when `data` is inline. */
      readonly url?: string;
      /** Inline base64. */
      readonly data?: string;
      readonly contentType?: string;
      readonly size?: number;
    };

export interface ImageRef {
  readonly eye: Eye;
  /** As the record states it; undefined = not stated (decided from the DICOM header or the pixels). */
  readonly modality?: DicomModality;
  readonly source: ImageSource;
  readonly resourceType: 'ImagingStudy' | 'Media' | 'DocumentReference' | 'Binary';
  /** 'ImagingStudy/x', 'Media/x', 'DocumentReference/x', 'Binary/x' (or the bundle fullUrl). */
  readonly fhirRef?: string;
  /** The resource's meta.versionId (else meta.lastUpdated): a re-recorded image is another image. */
  readonly version?: string;
  readonly acquired?: string;
}
