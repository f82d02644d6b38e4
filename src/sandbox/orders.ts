/** Draft orders as an EHR sends them in order-select / order-sign: an eye-imaging order and an unrelated one. */

/** A draft ServiceRequest for fundus photography (CPT 92250, SNOMED CT 20067007), as a clinician signs it. */
export function eyeExamOrder(patientId: string, id = 'volmo-demo-fundus-photo'): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    id,
    status: 'draft',
    intent: 'order',
    code: {
      coding: [
        { system: 'http://www.ama-assn.org/go/cpt', code: '92250', display: 'Fundus photography with interpretation and report' },
        { system: 'http://snomed.info/sct', code: '20067007', display: 'Ocular fundus photography' },
      ],
      text: 'Fundus photography, both eyes',
    },
    subject: { reference: `Patient/${patientId}` },
  };
}

/** A draft order with nothing to do with the eyes (a lipid panel). */
export function nonEyeOrder(patientId: string, id = 'volmo-demo-lipids'): Record<string, unknown> {
  return {
    resourceType: 'ServiceRequest',
    id,
    status: 'draft',
    intent: 'order',
    code: { coding: [{ system: 'http://loinc.org', code: '57698-3', display: 'Lipid panel with direct LDL' }], text: 'Lipid panel' },
    subject: { reference: `Patient/${patientId}` },
  };
}

/** The `draftOrders` Bundle of a hook call. */
export function draftOrders(...orders: Record<string, unknown>[]): Record<string, unknown> {
  return { resourceType: 'Bundle', type: 'collection', entry: orders.map((resource) => ({ resource })) };
}
