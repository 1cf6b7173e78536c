#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Regenerates tests/policies/bad/*.yaml: each file is a small valid policy broken in one way,
# with a first line "# expect: LINE:COL: message". The expected position is found by searching
# a marker in the generated text, independently of the loader under test.
import os, re
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad")
base = """version: 1
hosts:
  vps1:
    public_interfaces: [eth0]
    management:
      - { port: 22, from: [198.51.100.0/28] }
zones:
  dmz: { public: true }
  private: { public: false }
services:
  web:
    zone: dmz
    match: { compose_service: web }
    ports: [ { port: 443, public: true } ]
    protocol: tls
  db:
    zone: private
    match: { container_name: db }
    ports: [5432]
    protocol: postgresql
    tags: [store]
  bot:
    zone: private
    match: { image: "bot/bot" }
    ports: [9000]
    tags: [ai]
flows:
  - { from: internet, to: web, port: 443 }
  - { from: web, to: db, port: 5432 }
forbid:
  - id: NET-1
    from: internet
    to: { tag: store }
    severity: critical
    why: "no store from the Internet"
  - id: AI-2
    from: { tag: ai }
    to: { tag: store }
    access: write
    severity: critical
    why: "the AI never writes"
controls:
  - { id: AI-3, status: attested, by: DPO, date: 2026-09-01, evidence: "review" }
"""
def sub(old, new, text=None, count=1):
    t = base if text is None else text
    assert old in t, old
    return t.replace(old, new, count)

# (name, text, marker, occurrence, message)  -- marker located in the body (after the expect line)
cases = [
 ("unknown-key-top", sub("version: 1\n", "version: 1\nmodes: audit\n"), "modes:", 1,
  "unknown key 'modes' in the policy (expected one of: version, mode, hosts, zones, services, flows, forbid, controls)"),
 ("unknown-key-service", sub("    protocol: tls\n", "    prot: tls\n"), "prot:", 1,
  "unknown key 'prot' in service 'web' (expected one of: zone, host, match, ports, protocol, tags)"),
 ("unknown-key-flow", sub("to: db, port: 5432 }", "to: db, prot: 5432 }"), "prot:", 1,
  "unknown key 'prot' in flow (expected one of: from, to, port, access)"),
 ("wrong-type-zones", sub("zones:\n  dmz: { public: true }\n  private: { public: false }\n", "zones: [dmz, private]\n"), "[dmz", 1,
  "expected a mapping for zones, got a list"),
 ("wrong-type-public", sub("dmz: { public: true }", "dmz: { public: yes }"), "yes", 1,
  "expected true or false for 'public', got 'yes'"),
 ("wrong-type-tags", sub("tags: [store]", "tags: store"), "store\n", 1,
  "expected a list for tags of service 'db', got 'store'"),
 ("unknown-service", sub("to: db, port: 5432", "to: dbb, port: 5432"), "dbb", 1,
  "unknown service 'dbb' in 'to' of a flow"),
 ("unknown-zone", sub("zone: private\n    match: { container_name: db }", "zone: privat\n    match: { container_name: db }"), "privat\n", 1,
  "unknown zone 'privat' for service 'db' (zones: dmz, private)"),
 ("unknown-zone-selector", sub("  - id: NET-1\n    from: internet\n    to: { tag: store }", "  - id: NET-1\n    from: internet\n    to: { zone: privat }"), "{ zone: privat }", 1,
  "unknown zone 'privat' in 'to' of a forbid entry (zones: dmz, private)"),
 ("unknown-tag", sub("from: { tag: ai }", "from: { tag: ia }"), "{ tag: ia }", 1,
  "unknown tag 'ia' in 'from' of a forbid entry: no service carries it (tags: ai, store)"),
 ("unknown-host", sub("  web:\n    zone: dmz\n", "  web:\n    zone: dmz\n    host: vps2\n"), "vps2", 1,
  "unknown host 'vps2' for service 'web' (hosts: vps1)"),
 ("missing-host", sub("hosts:\n", "hosts:\n  vps2: { public_interfaces: [eth0] }\n"), "web:", 1,
  "missing key 'host' in service 'web' (the policy has several hosts: vps2, vps1)"),
 ("duplicate-service", sub("  bot:\n", "  db:\n"), "db:", 2,
  "duplicate key 'db' (first at {POS:db:})"),
 ("duplicate-key", sub("    protocol: tls\n", "    protocol: tls\n    zone: dmz\n"), "zone: dmz", 2,
  "duplicate key 'zone' (first at {POS:zone: dmz})"),
 ("bad-cidr-v4", sub("198.51.100.0/28", "198.51.100.0/33"), "198.51.100.0/33", 1,
  "expected a CIDR (ADDRESS or ADDRESS/PREFIX), got '198.51.100.0/33'"),
 ("bad-cidr-v6", sub("198.51.100.0/28", "2001:db8::g/64"), "2001:db8::g/64", 1,
  "expected a CIDR (ADDRESS or ADDRESS/PREFIX), got '2001:db8::g/64'"),
 ("cidr-host-bits-v4", sub("198.51.100.0/28", "198.51.100.1/28"), "198.51.100.1/28", 1,
  "host bits set in CIDR '198.51.100.1/28' (did you mean 198.51.100.0/28?)"),
 ("cidr-host-bits-v6", sub("match: { image: \"bot/bot\" }", "match: { cidr: [\"2001:db8::1/64\"] }"), "\"2001:db8::1/64\"", 1,
  "host bits set in CIDR '2001:db8::1/64' (did you mean 2001:db8::/64?)"),
 ("address-with-prefix", sub("public_interfaces: [eth0]\n", "public_interfaces: [eth0]\n    addresses: [203.0.113.0/24]\n"), "203.0.113.0/24", 1,
  "expected an IP address without prefix (or /32, /128), got '203.0.113.0/24'"),
 ("port-zero", sub("ports: [5432]", "ports: [0]"), ("[0]\n", 1), 1,
  "expected a port number 1-65535, got '0'"),
 ("port-too-big", sub("ports: [5432]", "ports: [70000]"), "70000", 1,
  "expected a port number 1-65535, got '70000'"),
 ("port-not-number", sub("ports: [9000]", "ports: [abc]"), "abc", 1,
  "expected a port number 1-65535, got 'abc'"),
 ("bad-proto", sub("{ port: 22, from:", "{ port: 22, proto: icmp, from:"), "icmp", 1,
  "expected proto tcp or udp, got 'icmp'"),
 ("bad-protocol", sub("protocol: postgresql", "protocol: postgres"), "postgres\n", 1,
  "expected protocol tcp, http, postgresql or tls, got 'postgres'"),
 ("public-port-private-zone", sub("ports: [5432]", "ports: [ { port: 5432, public: true } ]"), "true } ]", 2,
  "port 5432/tcp of service 'db' is public, but zone 'private' is not (public: false)"),
 ("duplicate-port", sub("ports: [5432]", "ports: [5432, { port: 5432, proto: tcp }]"), "{ port: 5432, proto", 1,
  "duplicate port 5432/tcp in service 'db'"),
 ("flow-contradicts-forbid", sub("  - { from: web, to: db, port: 5432 }\n", "  - { from: web, to: db, port: 5432 }\n  - { from: internet, to: db, port: 5432 }\n"), "{ from: internet, to: db", 1,
  "flow internet -> db contradicts forbid NET-1 at {FILE}:{POS:id: NET-1} (both cover internet -> db)"),
 ("flow-contradicts-write-forbid", sub("  - { from: web, to: db, port: 5432 }\n", "  - { from: web, to: db, port: 5432 }\n  - { from: { tag: ai }, to: db }\n"), "{ from: { tag: ai }", 1,
  "flow { tag: ai } -> db contradicts forbid AI-2 at {FILE}:{POS:id: AI-2} (both cover bot -> db; the forbid is on writes"),
 ("flow-unexposed-port", sub("to: db, port: 5432 }", "to: db, port: 5433 }"), "{ from: web, to: db", 1,
  "flow to port 5433: service 'db' exposes 5432/tcp"),
 ("flow-to-itself", sub("to: db, port: 5432 }", "to: web }"), "{ from: web, to: web", 1,
  "flow from web to itself: expected two different endpoints"),
 ("bad-severity", sub("severity: critical\n    why: \"no store", "severity: urgent\n    why: \"no store"), "urgent", 1,
  "expected severity critical, high, medium or low, got 'urgent'"),
 ("missing-why", sub("    severity: critical\n    why: \"the AI never writes\"\n", "    severity: critical\n"), "id: AI-2", 1,
  "missing key 'why' in forbid entry"),
 ("missing-zone", sub("  bot:\n    zone: private\n", "  bot:\n"), "bot:", 1,
  "missing key 'zone' in service 'bot'"),
 ("missing-services", sub(base[base.index("services:"):base.index("flows:")], ""), "version", 1,
  "missing key 'services' in the policy"),
 ("bad-date", sub("date: 2026-09-01", "date: 2026-02-30"), "2026-02-30", 1,
  "expected a date YYYY-MM-DD (a real calendar date), got '2026-02-30'"),
 ("anchor", sub("dmz: { public: true }", "dmz: &pub { public: true }"), "&pub", 1,
  "anchors and aliases are not supported (found anchor '&pub')"),
 ("alias", sub("  private: { public: false }", "  private: *pub"), "*pub", 1,
  "anchors and aliases are not supported (found alias '*pub')"),
 ("explicit-tag", sub("version: 1", "version: !!int 1"), "!!int", 1,
  "YAML tags are not supported"),
 ("too-deep", sub("version: 1\n", "version: 1\nmode: " + "[" * 40 + "]" * 40 + "\n"), ("mode: ", 6 + 31), 1,
  "nesting too deep (limit 32 levels)"),
 ("oversized-scalar", sub("why: \"the AI never writes\"", "why: \"" + "x" * 5000 + "\""), "\"xxxx", 1,
  "scalar too long (5000 bytes, limit 4096)"),
 ("version-2", sub("version: 1", "version: 2"), "2\n", 1,
  "unsupported policy version 2 (this agent reads version 1)"),
 ("version-missing", sub("version: 1\n", ""), "hosts", 1,
  "missing key 'version' in the policy"),
 ("multiple-documents", base + "---\nversion: 1\n", "---", 1,
  "expected a single YAML document, found a second one"),
 ("empty", "# nothing but comments\n", None, None,
  "empty policy: expected a mapping with version, hosts, zones and services"),
 ("not-a-mapping", "- version: 1\n", "- version", 1,
  "expected a mapping at the top of the policy"),
 ("tab-indentation", sub("    protocol: tls\n", "\tprotocol: tls\n"), "\tprotocol", 1,
  "invalid YAML: found character that cannot start any token"),
 ("reserved-name", sub("  bot:\n", "  internet:\n"), "internet:", 1,
  "'internet' is reserved"),
 ("bad-label", sub("match: { container_name: db }", "match: { label: \"nokeyvalue\" }"), "\"nokeyvalue\"", 1,
  "expected a label as \"key=value\" in match of service 'db', got 'nokeyvalue'"),
 ("two-matches", sub("match: { container_name: db }", "match: { container_name: db, image: postgres }"), "image", 1,
  "expected exactly one of compose_service, container_name, image, label or cidr in match of service 'db', got both 'container_name' and 'image'"),
 ("bad-interface", sub("public_interfaces: [eth0]", "public_interfaces: [a-very-long-interface-name]"), "a-very", 1,
  "expected an interface name (1-15 characters from A-Z a-z 0-9 _ . @ -) in public_interfaces"),
 ("duplicate-control", base + "  - { id: AI-3, status: attested, by: DPO, date: 2026-09-01, evidence: \"again\" }\n", "AI-3", 2,
  "duplicate control id 'AI-3' (first at {POS:{ id: AI-3})"),
 ("bad-access", sub("to: db, port: 5432 }", "to: db, port: 5432, access: write }"), "write }", 1,
  "expected access any or read-only, got 'write'"),
 ("non-utf8", sub("version: 1\n", "version: 1\nmode: \udcff\udcfe\n"), "\udcff", 1,
  "invalid YAML: invalid leading UTF-8 octet (byte 0xff)"),
 ("garbage", "\x00\x01\x02 binary", "\x00", 1,
  "invalid YAML: control characters are not allowed (byte 0x00)"),
 ("bad-forbid-id", sub("id: NET-1", "id: net-1"), "net-1", 1,
  "expected an id for a forbid entry (capital letters, digits and '-', e.g. NET-1), got 'net-1'"),
]

def pos_of(text, marker, occ):
    i = -1
    for _ in range(occ):
        i = text.index(marker, i + 1)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col

os.makedirs(out, exist_ok=True)
for f in os.listdir(out):
    if f.endswith(".yaml"):
        os.unlink(os.path.join(out, f))
for n, (name, body, marker, occ, msg) in enumerate(cases, 1):
    fname = "%02d-%s.yaml" % (n, name)
    full_tmp = "# expect: X\n" + body
    def repl(m):
        l, c = pos_of(full_tmp, m.group(1), 1)
        return "%d:%d" % (l, c)
    msg = re.sub(r"\{POS:([^}]*)\}", repl, msg).replace("{FILE}", fname)
    # positions written in messages ("first at L:C") refer to the body: shift by the header line
    if marker is None:
        line, col = full_tmp.count("\n") + 1, 1
    elif isinstance(marker, tuple):
        line, col = pos_of(full_tmp, marker[0], occ)
        col += marker[1]
    else:
        line, col = pos_of(full_tmp, marker, occ)
    data = "# expect: %d:%d: %s\n" % (line, col, msg) + body
    with open(os.path.join(out, fname), "wb") as f:
        f.write(data.encode("utf-8", "surrogateescape"))
print(len(cases), "files")
