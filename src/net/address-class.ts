/**
 * Pure classification of IP addresses for the outbound guard: which ranges are never reachable from a
 * public service (loopback, private, link-local, cloud metadata, reserved, multicast).
 */
import net from 'node:net';

export type AddressClass = 'public' | 'loopback' | 'private' | 'link_local' | 'metadata' | 'reserved' | 'multicast';

/** Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack, Alibaba, AWS IPv6). Never allowed. */
const METADATA = new Set(['169.254.169.254', '169.254.170.2', '100.100.100.200', 'fd00:ec2::254']);

type Range = readonly [string, number, AddressClass];

const V4: readonly Range[] = [
  ['0.0.0.0', 8, 'reserved'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'], // carrier-grade NAT
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link_local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const V6: readonly Range[] = [
  ['::', 128, 'reserved'],
  ['::1', 128, 'loopback'],
  ['100::', 64, 'reserved'],
  ['2001::', 32, 'reserved'], // Teredo (tunnels to arbitrary IPv4)
  ['2001:db8::', 32, 'reserved'],
  ['fc00::', 7, 'private'],
  ['fe80::', 10, 'link_local'],
  ['fec0::', 10, 'private'],
  ['ff00::', 8, 'multicast'],
];

function buildLists(): Map<AddressClass, net.BlockList> {
  const lists = new Map<AddressClass, net.BlockList>();
  const add = (r: Range, type: 'ipv4' | 'ipv6') => {
    let list = lists.get(r[2]);
    if (!list) lists.set(r[2], (list = new net.BlockList()));
    list.addSubnet(r[0], r[1], type);
  };
  V4.forEach((r) => add(r, 'ipv4'));
  V6.forEach((r) => add(r, 'ipv6'));
  return lists;
}

const LISTS = buildLists();

/** Expands an IPv6 literal to 8 groups of 16 bits, or undefined if it is not one. */
function ipv6Groups(ip: string): number[] | undefined {
  if (!net.isIPv6(ip)) return undefined;
  let s = ip.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  // a dotted IPv4 tail counts as two groups
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const p = dotted[1].split('.').map(Number);
    s = s.slice(0, dotted.index) + `${((p[0] << 8) | p[1]).toString(16)}:${((p[2] << 8) | p[3]).toString(16)}`;
  }
  const [head, tail] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

/**
 * The IPv4 address an IPv6 address carries, for every form that can reach an IPv4 host: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-translated (::ffff:0:a.b.c.d, SIIT), IPv4-compatible (::a.b.c.d, deprecated but
 * still routed by some stacks; :: and ::1 excluded), NAT64 well-known (64:ff9b::/96) and local-use
 * (64:ff9b:1::/48, RFC 8215, IPv4 in the last 32 bits as deployed with a /96), and 6to4 (2002::/16).
 */
export function embeddedIpv4(ip: string): string | undefined {
  const g = ipv6Groups(ip);
  if (!g) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return v4(g[6], g[7]); // ::ffff:a.b.c.d
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6], g[7]); // ::ffff:0:a.b.c.d
  if (zeros(0, 6) && (g[6] !== 0 || g[7] > 1)) return v4(g[6], g[7]); // ::a.b.c.d
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6], g[7]); // NAT64 well-known
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return v4(g[6], g[7]); // NAT64 local-use
  if (g[0] === 0x2002) return v4(g[1], g[2]); // 6to4
  return undefined;
}

/** Classifies an IP literal (v4 or v6, with or without brackets). Non-IP input throws. */
export function classifyAddress(address: string): AddressClass {
  const ip = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = net.isIP(ip);
  if (family === 0) throw new TypeError('not an IP address');
  if (METADATA.has(ip.toLowerCase())) return 'metadata';
  if (family === 6) {
    const inner = embeddedIpv4(ip);
    if (inner !== undefined) return classifyAddress(inner);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, list] of LISTS) if (list.check(ip, type)) return cls;
  return 'public';
}
