#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The inputs of expect.py taken from a live Docker instead of invented: which container is
which policy service (SPEC section 3 matching, written again here independently of the C
matcher), their addresses, the bridge networks and the published ports. Nothing here knows a
service, a port or an address of any policy.

  docker-plan.py POLICY_JSON CONTAINERS_JSON NETWORKS_JSON ENDPOINTS_OUT [--host NAME]

POLICY_JSON is `ceredisctl policy show FILE --json`; CONTAINERS_JSON and NETWORKS_JSON are the
Engine's GET /containers/json and GET /networks answers. Writes the endpoints file expect.py
reads and prints lines for the shell:
  net NAME CIDR4 CIDR6         a bridge network (CIDR6 a placeholder when it has no IPv6)
  publish HOSTPORT:SERVICE:PORT   a published TCP port of a service's container
  service NAME ID              the running container of a service
  untrusted ID NAME            a running container that matches no service

  docker-plan.py filter PLAN POLICY_JSON CONTAINERS_JSON LINES --host-addr A... --listen PORT...
                [--isolated 4|6 ...]

adds Docker's own facts to an expect.py plan (which knows only the policy): a container reaches
only the networks it is attached to, over the address families Docker isolates bridges from
each other in (--isolated: 4 when iptables holds Docker's DOCKER-ISOLATION chains, 6 when
ip6tables does; Docker 20.10 writes no ip6tables rules by default, so over IPv6 the VPS routes
between its bridges and only the agent stands between them), the Internet
reaches the VPS's public addresses only (nothing routes the bridges' private subnets to it),
a connection to a port nothing listens on cannot complete, and a port published for a public
service's public port is one of the host's public ports (endpoints_add_published). Such rows
expect "deny" with rule DOCKER, so that the judge wants them to fail whatever the agent does."""
import argparse
import json
import sys


def canon_image(ref):
    """(repository, tag, digest) the way Docker reads a reference."""
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1:]
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        ref = "docker.io/library/" + ref
    elif "." not in first and ":" not in first and first != "localhost":
        ref = "docker.io/" + ref
    return ref, tag, digest


def image_matches(pattern, image):
    p, i = canon_image(pattern), canon_image(image or "")
    if p[0] != i[0]:
        return False
    if p[2] and p[2] != i[2]:
        return False
    if p[1] and p[1] != (i[1] or ("" if i[2] else "latest")):
        return False
    return True


def matches(match, c):
    labels = c.get("Labels") or {}
    name = c["Names"][0].lstrip("/")
    if "compose_service" in match:
        return labels.get("com.docker.compose.service") == match["compose_service"]
    if "container_name" in match:
        return name == match["container_name"]
    if "image" in match:
        return image_matches(match["image"], c.get("Image"))
    if "label" in match:
        key, _, value = match["label"].partition("=")
        return labels.get(key) == value
    return False  # cidr: not a container


def cmd_filter(argv):
    ap = argparse.ArgumentParser()
    ap.add_argument("plan")
    ap.add_argument("policy")
    ap.add_argument("containers")
    ap.add_argument("lines")
    ap.add_argument("--host-addr", action="append", default=[])
    ap.add_argument("--listen", action="append", type=int, default=[])
    ap.add_argument("--isolated", action="append", choices=["4", "6"], default=[])
    args = ap.parse_args(argv)
    pol = json.load(open(args.policy))
    services = pol["services"]
    services = dict(services) if isinstance(services, list) and services and not isinstance(services[0], dict) \
        else ({s["name"]: s for s in services} if isinstance(services, list) else services)
    zones = pol["zones"]
    zones = dict(zones) if isinstance(zones, list) and zones and not isinstance(zones[0], dict) \
        else ({z["name"]: z for z in zones} if isinstance(zones, list) else zones)
    ids = {}
    for line in open(args.lines):
        f = line.split()
        if f and f[0] == "service":
            ids[f[1]] = f[2]
    nets = {}  # service -> set of network names; address -> network name
    addr_net = {}
    for c in json.load(open(args.containers)):
        svc = next((k for k, v in ids.items() if v == c["Id"]), None)
        for name, n in ((c.get("NetworkSettings") or {}).get("Networks") or {}).items():
            for key in ("IPAddress", "GlobalIPv6Address"):
                if n.get(key):
                    addr_net[n[key]] = name
            if svc:
                nets.setdefault(svc, set()).add(name)
    hosts = set(args.host_addr)
    for line in open(args.plan):
        f = line.split()
        srcns, dst, port, exp, what = f[0], f[3], int(f[4]), f[5], f[9]
        docker_blocks = False
        if srcns == "inet" and dst not in hosts:
            docker_blocks = True
        elif srcns.startswith("svc-") and addr_net.get(dst) not in nets.get(srcns[4:], set()) and \
                ("6" if ":" in dst else "4") in args.isolated:
            docker_blocks = True
        elif dst in hosts and port not in args.listen:
            docker_blocks = True
        if dst in hosts and "(published:" in what and exp == "deny" and f[6] == "DEFAULT-DENY":
            svc, cport = what.split("(published:_")[1].rstrip(")").split(":")
            s = services[svc]
            pub = any((p.get("port") if isinstance(p, dict) else p) == int(cport) and
                      isinstance(p, dict) and p.get("public") for p in s.get("ports", []))
            if zones[s["zone"]].get("public") and pub:
                f[5], f[6] = "allow", "-"
        if docker_blocks and f[5] == "allow":
            f[5], f[6] = "deny", "DOCKER"
        print(" ".join(f))
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "filter":
        return cmd_filter(sys.argv[2:])
    ap = argparse.ArgumentParser()
    ap.add_argument("policy")
    ap.add_argument("containers")
    ap.add_argument("networks")
    ap.add_argument("endpoints_out")
    ap.add_argument("--host")
    args = ap.parse_args()
    pol = json.load(open(args.policy))
    services = pol["services"]
    if isinstance(services, dict):
        services = list(services.items())
    elif services and isinstance(services[0], dict):
        services = [(s["name"], s) for s in services]
    hosts = pol["hosts"]
    host = args.host or (next(iter(hosts)) if isinstance(hosts, dict) else hosts[0]["name"])
    containers = json.load(open(args.containers))
    endpoints = {}
    for c in containers:
        if c.get("State") != "running":
            continue
        svc = next((n for n, s in services if s.get("host") in (host, None) and matches(s["match"], c)), None)
        if svc is None:
            print("untrusted", c["Id"], c["Names"][0].lstrip("/"))
            continue
        print("service", svc, c["Id"])
        for net in (c.get("NetworkSettings") or {}).get("Networks", {}).values():
            for key in ("IPAddress", "GlobalIPv6Address"):
                if net.get(key):
                    endpoints.setdefault(svc, []).append(net[key])
        for p in c.get("Ports") or []:
            if p.get("PublicPort") and p.get("Type") == "tcp" and p.get("IP") in ("0.0.0.0", None, ""):
                print("publish %d:%s:%d" % (p["PublicPort"], svc, p["PrivatePort"]))
    with open(args.endpoints_out, "w") as f:
        json.dump(endpoints, f, indent=2)
    for i, n in enumerate(json.load(open(args.networks))):
        if n.get("Driver") != "bridge":
            continue
        v4 = [x["Subnet"] for x in (n.get("IPAM") or {}).get("Config") or [] if ":" not in x.get("Subnet", ":")]
        v6 = [x["Subnet"] for x in (n.get("IPAM") or {}).get("Config") or [] if ":" in x.get("Subnet", "")]
        if v4:
            print("net", n["Name"], v4[0], v6[0] if v6 else "fd00:%x::/64" % (0xce00 + i))
    return 0


if __name__ == "__main__":
    sys.exit(main())
