/**
 * Every limit and gradability threshold of the imaging pipeline, in one place. Numbers were measured on
 * the public IDRiD fundus photograph (/work/shared/data/fundus/IDRiD_01.jpg) and on synthetic images made
 * in test/imaging; see the report in docs or the commit message for the measurements.
 */

/** Size limits, checked on the bytes and on the dimensions declared in the header, BEFORE any decoding. */
export const LIMITS = Object.freeze({
  /** A JPEG/PNG attachment or rendered image (fundus cameras produce 1–8 MB JPEGs). */
  maxImageBytes: 32 * 1024 * 1024,
  /** A DICOM Part 10 object (an uncompressed 24 MP fundus photo is ~72 MB; OCT volumes fetch one frame). */
  maxDicomBytes: 160 * 1024 * 1024,
  /** Declared width × height (also passed to sharp as `limitInputPixels`): 50 MP covers every fundus camera. */
  maxPixels: 50_000_000,
  /** Longest side, declared. */
  maxSide: 16_384,
  /** Shortest side: below this an image is useless for VOLMO's 448-px tiles. */
  minSide: 64,
  /** Multi-frame objects (OCT volumes): more frames than this is refused. */
  maxFrames: 2_048,
  /**
   * Default total of declared pixels decoded for one request (all of a patient's images in one hook call;
   * VOLMO_MAX_STUDY_PIXELS): 200 MP is 24 images of 8 MP, or four 7000×7000 frames.
   */
  maxStudyPixels: 200_000_000,
});

/**
 * Gradability gate for fundus photographs (modality OP). Metrics are computed on a grey (luma) and a green
 * channel copy of the image shrunk to `analysisSide` pixels on its long side.
 */
export const GRADABILITY = Object.freeze({
  analysisSide: 512,
  /** Pixels with luma <= this (0–255) are the black surround outside the camera's circular field. */
  backgroundLuma: 12,
  /** Below this fraction of non-background pixels there is no fundus field (IDRiD_01: 0.87). */
  minFieldFraction: 0.2,
  /**
   * Mean luma (0–255) of the fundus field below this is `too_dark`. IDRiD_01 measures 111.5; scaled by
   * 0.3 → 33, by 0.15 → 17.
   */
  minFieldMeanLuma: 28,
  /**
   * 1000 × variance of the 4-neighbour Laplacian of the green channel inside the field (eroded by
   * `edgeMarginPx` so the field's rim does not count) / (mean green)²: a sharpness that does not change
   * with exposure. Below this the image is `too_blurred`. IDRiD_01 measures 12.5; after a Gaussian blur at
   * full size (3410 px wide) of sigma 2 / 4 / 6 / 10 px: 9.5 / 4.6 / 2.2 / 0.8.
   */
  minSharpness: 3.0,
  edgeMarginPx: 6,
  /**
   * Optic disc: the brightest blob. The green channel is box-smoothed over `discWindowFraction` of the field
   * diameter; (max − median) / median of that smoothed image inside the field must reach `minDiscContrast`.
   * IDRiD_01 measures 1.00; the synthetic fundus 1.45 with its disc, 0.27 without.
   */
  discWindowFraction: 0.06,
  minDiscContrast: 0.35,
  /**
   * What a colour fundus photograph is (the gate for images recorded as OP, and the guess for images that do
   * not say what they are): a camera field with a dark surround (field fraction at most `maxFieldFraction`)
   * that is red-dominated at any exposure (`redDominance` = mean (red − green) / mean luma inside the field,
   * at least `minRedDominance`). Measured: the fundus fixtures 1.23–1.25 (field 0.67), IDRiD_01 0.86 (field
   * 0.87), the underexposed fixture 3.3; OCT B-scans 0 (the shared public one: field 1.0; the synthetic
   * fixtures 0.79–0.80); a flat grey picture 0, field 1.0. Red-free (greyscale) fundus photographs are refused too:
   * VOLMO's fundus questions are asked of colour photographs.
   */
  maxFieldFraction: 0.97,
  minRedDominance: 0.2,
});
