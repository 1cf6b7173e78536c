#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""What a policy allows, computed from `ceredisctl policy show FILE --json` and an endpoints
file, independently of the compiler: the test oracle of the enforcement suites. Nothing here
knows a service name, a port or an address of the reference policy.

  expect.py facts POLICY_JSON
      shell assignments: host, iface, addr4, addr6, mgmt_ports, public_ports, mode.
  expect.py endpoints POLICY_JSON --net NAME=CIDR4,CIDR6 ...
      assign each service addresses on Docker-like networks: a public-zone service on the
      first network, any other on the second; a service also gets a leg on the network of
      every service it has a flow to (as a compose file would attach it). Prints endpoints JSON.
  expect.py topology POLICY_JSON ENDPOINTS --net NAME=CIDR4,CIDR6 ...
      lines "leg SERVICE NET ADDR4 ADDR6", "listen SERVICE PORT..." and "publish HOSTPORT
      PORT ADDR4 ADDR6" (Docker's DNAT of a published port) for the test topology.
  expect.py matrix POLICY_JSON ENDPOINTS --net ... --host-addr ADDR --client ADDR
           [--publish HOSTPORT:SERVICE:PORT] [--extra-host-port PORT]
      the probe plan: lines "SRCNS ID SRC DST PORT EXPECT RULE SEENDST SEENPORT WHAT" where
      SRCNS is inet, vps or svc-NAME, EXPECT is allow or deny, RULE the forbid id (or
      DEFAULT-DENY) that must log a denied connection ("-" when allowed), SEENDST:SEENPORT the
      destination the ruleset sees (after a published port's DNAT).

The semantics are SPEC section 4: forbid always drops (first matching entry in file order
names the rule); a flow passes; anything else into a non-public zone is denied; from a public
interface, a service address passes only on its public ports, the host itself only on its
public service ports and on management ports from their CIDRs, and a published (DNAT'ed)
port passes only when both its original port and the container port it reaches are public."""
import argparse
import ipaddress
import json
import sys


# ---- the policy model, read from `policy show --json` ------------------------------------

def _names(v):
    """A list of service names from a resolved selector, whatever the list holds."""
    out = []
    for x in v or []:
        out.append(x["name"] if isinstance(x, dict) else x)
    return set(out)


def _endpoint(e):
    """Normalise a from/to endpoint to {services, internet, host}."""
    r = e.get("resolved", e) if isinstance(e, dict) else {}
    kind = e.get("kind") or e.get("type") if isinstance(e, dict) else e
    return {
        "services": _names(r.get("services")),
        "internet": bool(r.get("internet")) or kind == "internet",
        "host": bool(r.get("host")) or kind == "host",
    }


def _items(v):
    """A map of name -> object given either as a JSON object or as a list with "name"."""
    if isinstance(v, dict):
        return [dict(obj, name=name) for name, obj in v.items()]
    return list(v or [])


def _proto(p):
    return {6: "tcp", 17: "udp"}.get(p, p) if p is not None else "tcp"


def load_policy(path):
    with open(path) as f:
        j = json.load(f)
    zones = {z["name"]: bool(z.get("public")) for z in _items(j["zones"])}
    services = {}
    for s in _items(j["services"]):
        ports = []
        for p in s.get("ports", []):
            if isinstance(p, int):
                p = {"port": p}
            ports.append((int(p["port"]), _proto(p.get("proto")), bool(p.get("public"))))
        services[s["name"]] = {
            "zone": s["zone"],
            "public_zone": zones[s["zone"]],
            "ports": ports,
            "host": s.get("host"),
        }
    flows = []
    for fl in j.get("flows", []):
        port = fl.get("port")
        flows.append({
            "from": _endpoint(fl["from"]),
            "to": _endpoint(fl["to"]),
            "port": None if port in (None, -1, "any") else int(port),
        })
    forbids = []
    for fb in j.get("forbid", j.get("forbids", [])):
        forbids.append({
            "id": fb["id"],
            "from": _endpoint(fb["from"]),
            "to": _endpoint(fb["to"]),
            "access": fb.get("access", "any"),
        })
    hosts = {}
    for h in _items(j["hosts"]):
        mgmt = []
        for m in h.get("management", []):
            mgmt.append((int(m["port"]), _proto(m.get("proto")),
                         [ipaddress.ip_network(c, strict=False) for c in m.get("from", [])]))
        hosts[h["name"]] = {
            "public_interfaces": h.get("public_interfaces", []),
            "addresses": h.get("addresses", []),
            "management": mgmt,
        }
    return {"mode": j.get("mode", "enforce"), "services": services, "flows": flows,
            "forbids": forbids, "hosts": hosts}


# ---- the verdicts ------------------------------------------------------------------------

def _in(ep, src):
    kind, name = src
    if kind == "internet":
        return ep["internet"]
    if kind == "host":
        return ep["host"]
    return name in ep["services"]


def _forbid(pol, src, dst):
    for fb in pol["forbids"]:
        if fb["access"] == "write":
            continue  # an L7 matter for the watcher, not an L3 drop
        if _in(fb["from"], src) and dst in fb["to"]["services"]:
            return fb["id"]
    return None


def verdict_service(pol, src, dst, port):
    """src is ("service", NAME) or ("host", None); returns (allow, rule)."""
    rule = _forbid(pol, src, dst)
    if rule:
        return False, rule
    for fl in pol["flows"]:
        if _in(fl["from"], src) and dst in fl["to"]["services"] and fl["port"] in (None, port):
            return True, None
    if not pol["services"][dst]["public_zone"]:
        return False, "DEFAULT-DENY"
    return True, None


def _public(pol, dst, port):
    s = pol["services"][dst]
    return s["public_zone"] and any(p == port and pub for p, _, pub in s["ports"])


def verdict_internet_service(pol, dst, port):
    rule = _forbid(pol, ("internet", None), dst)
    if rule:
        return False, rule
    return (True, None) if _public(pol, dst, port) else (False, "DEFAULT-DENY")


def host_public_ports(pol, host):
    return {p for s in pol["services"].values() if s["host"] in (host, None) and s["public_zone"]
            for p, _, pub in s["ports"] if pub}


def verdict_internet_host(pol, host, client, port, published):
    if port in published:
        dst, cport = published[port]
        rule = _forbid(pol, ("internet", None), dst)
        if rule:
            return False, rule
        ok = _public(pol, dst, cport) and port in host_public_ports(pol, host)
        return (True, None) if ok else (False, "DEFAULT-DENY")
    addr = ipaddress.ip_address(client)
    for mport, proto, cidrs in pol["hosts"][host]["management"]:
        if mport == port and proto == "tcp" and any(addr in c for c in cidrs if c.version == addr.version):
            return True, None
    if port in host_public_ports(pol, host):
        return True, None
    return False, "DEFAULT-DENY"


def cmd_facts(pol, args):
    """Shell assignments describing the host: name, public interface, addresses, ports."""
    host = args.host or next(iter(pol["hosts"]))
    h = pol["hosts"][host]
    a4 = [a.split("/")[0] for a in h["addresses"] if ":" not in a]
    a6 = [a.split("/")[0] for a in h["addresses"] if ":" in a]
    print("host=%s" % host)
    print("iface=%s" % h["public_interfaces"][0])
    print("addr4=%s" % (a4[0] if a4 else ""))
    print("addr6=%s" % (a6[0] if a6 else ""))
    print("mgmt_ports=(%s)" % " ".join(str(p) for p, proto, _ in h["management"] if proto == "tcp"))
    print("public_ports=(%s)" % " ".join(str(p) for p in sorted(host_public_ports(pol, host))))
    print("mode=%s" % pol["mode"])


# ---- topology ----------------------------------------------------------------------------

def parse_nets(specs):
    nets = []
    for spec in specs:
        name, cidrs = spec.split("=", 1)
        v4, v6 = (ipaddress.ip_network(c) for c in cidrs.split(","))
        nets.append((name, v4, v6))
    return nets


def _net_of(nets, addr):
    a = ipaddress.ip_address(addr.split("/")[0])
    for name, v4, v6 in nets:
        if a in v4 or a in v6:
            return name
    return None


def assign_endpoints(pol, nets):
    """Docker-like addresses: .1 is the bridge, services from .2 in policy order."""
    primary = {s: nets[0][0] if v["public_zone"] else nets[1][0] for s, v in pol["services"].items()}
    legs = {s: [primary[s]] for s in pol["services"]}
    for fl in pol["flows"]:
        for src in fl["from"]["services"]:
            for dst in fl["to"]["services"]:
                if primary[dst] not in legs[src]:
                    legs[src].append(primary[dst])
    nexthost = {name: 2 for name, _, _ in nets}
    out = {}
    for s in pol["services"]:
        out[s] = []
        for netname in legs[s]:
            _, v4, v6 = next(n for n in nets if n[0] == netname)
            i = nexthost[netname]
            nexthost[netname] += 1
            out[s] += [str(v4.network_address + i), str(v6.network_address + i)]
    return out


def load_endpoints(path):
    with open(path) as f:
        return {k: [a.split("/")[0] for a in v] for k, v in json.load(f).items()}


def legs_of(ep, nets, service):
    """[(net, addr4, addr6)] in the order the endpoints file lists them."""
    legs = {}
    order = []
    for a in ep.get(service, []):
        n = _net_of(nets, a)
        if n is None:
            continue
        if n not in legs:
            legs[n] = [None, None]
            order.append(n)
        legs[n][0 if ":" not in a else 1] = a
    return [(n, legs[n][0], legs[n][1]) for n in order]


def parse_publish(specs):
    published = {}
    for spec in specs:
        hp, svc, cp = spec.split(":")
        published[int(hp)] = (svc, int(cp))
    return published


def publish_target(ep, nets, svc, v6):
    """The container address a published port is DNAT'ed to: the service's first of that family."""
    for _, a4, a6 in legs_of(ep, nets, svc):
        if (a6 if v6 else a4):
            return a6 if v6 else a4
    return None


def cmd_topology(pol, ep, nets, args):
    for s in pol["services"]:
        for n, a4, a6 in legs_of(ep, nets, s):
            print("leg", s, n, a4 or "-", a6 or "-")
        print("listen", s, *sorted({p for p, proto, _ in pol["services"][s]["ports"] if proto == "tcp"}))
    for hp, (svc, cp) in sorted(parse_publish(args.publish).items()):
        print("publish", hp, cp, publish_target(ep, nets, svc, False) or "-",
              publish_target(ep, nets, svc, True) or "-")


# ---- the probe plan ----------------------------------------------------------------------

def cmd_matrix(pol, ep, nets, args):
    host = args.host or next(iter(pol["hosts"]))
    gateways = {name: (str(v4.network_address + 1), str(v6.network_address + 1))
                for name, v4, v6 in nets}
    published = parse_publish(args.publish)
    rows = []

    def add(srcns, src, dst, port, verdict, what, seen=None):
        """seen: the (address, port) the ruleset sees after Docker's DNAT, if it differs."""
        allow, rule = verdict
        sdst, sport = seen or (dst, port)
        rows.append((srcns, src, dst, port, "allow" if allow else "deny", rule or "-", sdst, sport,
                     what))

    def dst_addrs(d):
        return [(n, a) for n, a4, a6 in legs_of(ep, nets, d) for a in (a4, a6) if a]

    def tcp_ports(d):
        return sorted({p for p, proto, _ in pol["services"][d]["ports"] if proto == "tcp"})

    for s in pol["services"]:
        slegs = legs_of(ep, nets, s)
        for d in pol["services"]:
            if d == s:
                continue
            for dnet, daddr in dst_addrs(d):
                v6 = ":" in daddr
                same = [l for l in slegs if l[0] == dnet]
                leg = (same or slegs)[0]
                src = leg[2] if v6 else leg[1]
                if not src:
                    continue
                for port in tcp_ports(d):
                    add("svc-" + s, src, daddr, port, verdict_service(pol, ("service", s), d, port),
                        "%s -> %s [%s]:%d" % (s, d, daddr, port))
    for d in pol["services"]:
        for dnet, daddr in dst_addrs(d):
            gw = gateways[dnet][1 if ":" in daddr else 0]
            for port in tcp_ports(d):
                add("vps", gw, daddr, port, verdict_service(pol, ("host", None), d, port),
                    "host -> %s [%s]:%d" % (d, daddr, port))
    for client in args.client:
        v6 = ":" in client
        for d in pol["services"]:
            for dnet, daddr in dst_addrs(d):
                if (":" in daddr) != v6:
                    continue
                for port in tcp_ports(d):
                    add("inet", client, daddr, port, verdict_internet_service(pol, d, port),
                        "internet %s -> %s [%s]:%d" % (client, d, daddr, port))
        host_ports = set(published) | host_public_ports(pol, host) | set(args.extra_host_port)
        host_ports |= {p for p, proto, _ in pol["hosts"][host]["management"] if proto == "tcp"}
        for haddr in args.host_addr:
            if (":" in haddr) != v6:
                continue
            for port in sorted(host_ports):
                what = "internet %s -> host [%s]:%d" % (client, haddr, port)
                seen = None
                if port in published:
                    svc, cport = published[port]
                    what += " (published: %s:%d)" % (svc, cport)
                    seen = (publish_target(ep, nets, svc, v6), cport)
                add("inet", client, haddr, port,
                    verdict_internet_host(pol, host, client, port, published), what, seen)
    for i, (srcns, src, dst, port, exp, rule, sdst, sport, what) in enumerate(rows):
        print(srcns, i, src, dst, port, exp, rule, sdst, sport, what.replace(" ", "_"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["facts", "endpoints", "topology", "matrix"])
    ap.add_argument("policy_json")
    ap.add_argument("endpoints", nargs="?")
    ap.add_argument("--net", action="append", default=[])
    ap.add_argument("--host")
    ap.add_argument("--host-addr", action="append", default=[])
    ap.add_argument("--client", action="append", default=[])
    ap.add_argument("--publish", action="append", default=[])
    ap.add_argument("--extra-host-port", action="append", type=int, default=[])
    args = ap.parse_args()
    pol = load_policy(args.policy_json)
    nets = parse_nets(args.net)
    if args.cmd == "facts":
        cmd_facts(pol, args)
        return
    if args.cmd == "endpoints":
        json.dump(assign_endpoints(pol, nets), sys.stdout, indent=2)
        print()
        return
    ep = load_endpoints(args.endpoints)
    if args.cmd == "topology":
        cmd_topology(pol, ep, nets, args)
    else:
        cmd_matrix(pol, ep, nets, args)


if __name__ == "__main__":
    main()
