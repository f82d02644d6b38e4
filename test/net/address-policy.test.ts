import { describe, expect, it } from 'vitest';
import { classifyAddress, embeddedIpv4 } from '../../src/net/address-class.js';
import { compileAllowEntry, compileAllowlist, describeOrigin, matchAllowlist } from '../../src/net/allowlist.js';
import { isAppError } from '../../src/errors.js';
import { backoffDelay, nextRetryDelay, parseRetryAfter, DEFAULT_RETRY } from '../../src/net/retry-policy.js';

describe('classifyAddress', () => {
  it.each([
    ['8.8.8.8', 'public'],
    ['2606:4700::1111', 'public'],
    ['127.0.0.1', 'loopback'],
    ['127.5.6.7', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.1', 'public'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['0.0.0.0', 'reserved'],
    ['::', 'reserved'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:a9fe:a9fe', 'metadata'],
    ['[::ffff:127.0.0.1]', 'loopback'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:a00:1::', 'private'],
    ['2001:0:4136:e378::1', 'reserved'],
    // embedded IPv4 in the other IPv6 forms (hostile probe, issue 14 finding 7)
    ['::7f00:1', 'loopback'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b:1::7f00:1', 'loopback'],
    ['::ffff:0:7f00:1', 'loopback'],
    ['::ffff:0:a9fe:a9fe', 'metadata'],
    ['::a00:1', 'private'],
    ['::1', 'loopback'],
    ['::0.0.0.1', 'loopback'],
  ])('%s is %s', (ip, cls) => {
    expect(classifyAddress(ip)).toBe(cls);
  });

  it('rejects non-IP input', () => {
    expect(() => classifyAddress('example.org')).toThrow(TypeError);
  });

  it('unwraps embedded IPv4 only where the format defines one', () => {
    expect(embeddedIpv4('::ffff:192.168.0.1')).toBe('192.168.0.1');
    expect(embeddedIpv4('2606:4700::1111')).toBeUndefined();
    expect(embeddedIpv4('10.0.0.1')).toBeUndefined();
    expect(embeddedIpv4('::1')).toBeUndefined();
    expect(embeddedIpv4('::')).toBeUndefined();
    expect(embeddedIpv4('::808:808')).toBe('8.8.8.8');
  });
});

describe('allowlist', () => {
  const list = compileAllowlist([
    'https://fhir.example.org/api/FHIR/R4/',
    { prefix: 'http://pacs.hospital.local:8042/dicom-web', allowPrivateNetwork: true },
    'http://127.0.0.1:9000',
  ]);
  const m = (u: string) => matchAllowlist(list, new URL(u));

  it('matches scheme, host, port and path prefix at a segment boundary', () => {
    expect(m('https://fhir.example.org/api/FHIR/R4/Patient/1')).toBeDefined();
    expect(m('https://fhir.example.org/api/FHIR/R4')).toBeDefined();
    expect(m('https://FHIR.example.org:443/api/FHIR/R4/Observation?x=1')).toBeDefined();
    expect(m('https://fhir.example.org./api/FHIR/R4/Patient')).toBeDefined();
    expect(m('https://fhir.example.org/api/FHIR/R4x/Patient')).toBeUndefined();
    expect(m('https://fhir.example.org/api/FHIR/R4/../../admin')).toBeUndefined();
    expect(m('https://fhir.example.org/api/FHIR/R4/%2e%2e/%2e%2e/admin')).toBeUndefined();
    expect(m('http://fhir.example.org/api/FHIR/R4/Patient')).toBeUndefined();
    expect(m('https://fhir.example.org:8443/api/FHIR/R4/Patient')).toBeUndefined();
    expect(m('https://evil.fhir.example.org/api/FHIR/R4/Patient')).toBeUndefined();
    expect(m('https://fhir.example.org.evil.com/api/FHIR/R4/Patient')).toBeUndefined();
  });

  it('derives allowed address classes per entry', () => {
    expect([...m('https://fhir.example.org/api/FHIR/R4')!.allowedClasses]).toEqual(['public']);
    expect(m('http://pacs.hospital.local:8042/dicom-web/studies')!.allowedClasses.has('private')).toBe(true);
    expect(m('http://pacs.hospital.local:8042/dicom-web/studies')!.allowedClasses.has('link_local')).toBe(false);
    expect(m('http://127.0.0.1:9000/anything')!.allowedClasses.has('loopback')).toBe(true);
    expect(m('http://127.0.0.1:9000/anything')!.allowedClasses.has('private')).toBe(false);
  });

  it('rejects bad entries with config_invalid', () => {
    for (const bad of ['ftp://x.org', 'not a url', 'https://u:p@x.org', 'https://x.org/?a=1', 'http://169.254.169.254/']) {
      try {
        compileAllowEntry(bad);
        expect.unreachable(bad);
      } catch (err) {
        expect(isAppError(err) && err.code).toBe('config_invalid');
      }
    }
  });

  it('describes origins without path or query', () => {
    expect(describeOrigin('https://fhir.example.org/Patient/123?patient=9')).toBe('https://fhir.example.org');
    expect(describeOrigin('::')).toBe('(invalid URL)');
  });
});

describe('retry policy', () => {
  it('parses Retry-After seconds and dates', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('backs off exponentially with jitter, capped', () => {
    const opts = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(0, opts, () => 1)).toBe(100);
    expect(backoffDelay(2, opts, () => 1)).toBe(400);
    expect(backoffDelay(10, opts, () => 1)).toBe(1000);
    expect(backoffDelay(2, opts, () => 0)).toBe(200);
  });

  it('stops when out of retries or when Retry-After exceeds the cap', () => {
    const opts = { ...DEFAULT_RETRY, maxRetries: 2, maxRetryAfterMs: 5000 };
    expect(nextRetryDelay(2, undefined, opts)).toBeUndefined();
    expect(nextRetryDelay(0, '120', opts)).toBeUndefined();
    expect(nextRetryDelay(0, '2', opts, () => 0)).toBe(2000);
  });
});
