/** A CDS Hooks 2.0 service definition as published in discovery. Data only; handlers are bound by id in src/cds/. */
export interface CdsServiceDefinition {
  readonly id: string;
  readonly hook: 'patient-view' | 'order-select' | 'order-sign';
  readonly title: string;
  readonly description: string;
  readonly prefetch?: Readonly<Record<string, string>>;
  readonly usageRequirements?: string;
}
