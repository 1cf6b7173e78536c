/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * L2-L4 decoding of captured frames: Ethernet with one 802.1Q tag, Linux cooked captures (SLL
 * and SLL2, what libpcap gives for the "any" device), raw IP, and NFLOG records (the packets the
 * agent's own ruleset logs, with the rule's prefix), down to IPv4/IPv6 (extension headers walked,
 * bounded), TCP and UDP. The result locates the L4 payload inside the caller's buffer for the
 * HTTP and PostgreSQL decoders. Pure: every read is preceded by a length check.
 */
#include "ceredis.h"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <sys/socket.h>

#include "decode.h"

#define ETH_HLEN 14u
#define SLL_HLEN 16u
#define SLL2_HLEN 20u
#define VLAN_HLEN 4u
#define ETHERTYPE_IPV4 0x0800u
#define ETHERTYPE_IPV6 0x86ddu
#define ETHERTYPE_VLAN 0x8100u
#define ETHERTYPE_QINQ 0x88a8u

/* NFLOG record layout (libpcap's pcap/nflog.h): a 4-byte header, then TLVs padded to 4 bytes. */
#define NFLOG_HLEN 4u
#define NFLOG_TLV_HLEN 4u
#define NFULA_PACKET_HDR 1u
#define NFULA_IFINDEX_INDEV 4u
#define NFULA_IFINDEX_OUTDEV 5u
#define NFULA_PAYLOAD 9u
#define NFULA_PREFIX 10u

static uint16_t rd16(const uint8_t *p) {
        return (uint16_t) ((unsigned) p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* NFLOG TLV length and type are in the capturing host's byte order; libpcap swaps them for a
 * savefile written on another host, so they are read in ours. */
static uint16_t rd16_host(const uint8_t *p) {
        uint16_t v;
        memcpy(&v, p, sizeof(v));
        return v;
}

static int decode_l4(uint8_t proto, const uint8_t *p, size_t len, bool first_fragment,
                     DecodePacket *pkt) {
        pkt->l4proto = proto;
        if (!first_fragment)
                return 0; /* a later fragment has no L4 header, only data of unknown offset */

        switch (proto) {
        case IPPROTO_TCP: {
                if (len < 20) {
                        if (pkt->truncated || pkt->fragment)
                                return 0; /* snaplen or fragmentation cut it: addresses only */
                        return -EBADMSG;
                }
                size_t hlen = (size_t) (p[12] >> 4) * 4;
                if (hlen < 20)
                        return -EBADMSG;
                if (hlen > len) {
                        if (pkt->truncated || pkt->fragment)
                                return 0;
                        return -EBADMSG;
                }
                pkt->sport = rd16(p);
                pkt->dport = rd16(p + 2);
                pkt->tcp_seq = rd32(p + 4);
                pkt->tcp_ack = rd32(p + 8);
                pkt->tcp_flags = p[13] & 0x3f;
                pkt->has_l4 = true;
                pkt->payload = p + hlen;
                pkt->payload_len = len - hlen;
                return 0;
        }
        case IPPROTO_UDP: {
                if (len < 8) {
                        if (pkt->truncated || pkt->fragment)
                                return 0;
                        return -EBADMSG;
                }
                size_t ulen = rd16(p + 4);
                if (ulen < 8 && !pkt->fragment)
                        return -EBADMSG;
                pkt->sport = rd16(p);
                pkt->dport = rd16(p + 2);
                pkt->has_l4 = true;
                pkt->payload = p + 8;
                pkt->payload_len = len - 8;
                if (!pkt->fragment && ulen >= 8 && ulen - 8 < pkt->payload_len)
                        pkt->payload_len = ulen - 8;
                return 0;
        }
        default:
                pkt->payload = p;
                pkt->payload_len = len;
                return 0;
        }
}

static int decode_ipv4(const uint8_t *p, size_t len, DecodePacket *pkt) {
        if (len < 20 || (p[0] >> 4) != 4)
                return -EBADMSG;
        size_t hlen = (size_t) (p[0] & 0x0f) * 4;
        size_t total = rd16(p + 2);
        if (hlen < 20 || hlen > len || total < hlen)
                return -EBADMSG;
        if (total > len)
                pkt->truncated = true;
        else
                len = total; /* drop Ethernet padding */

        uint16_t frag = rd16(p + 6);
        bool more = frag & 0x2000;
        size_t offset = frag & 0x1fff;

        pkt->family = AF_INET;
        memcpy(pkt->src, p + 12, 4);
        memcpy(pkt->dst, p + 16, 4);
        pkt->ttl = p[8];
        pkt->fragment = more || offset != 0;
        return decode_l4(p[9], p + hlen, len - hlen, offset == 0, pkt);
}

static bool ipv6_is_extension(uint8_t nh) {
        return nh == 0 /* hop-by-hop */ || nh == 43 /* routing */ || nh == 44 /* fragment */ ||
               nh == 60 /* destination options */ || nh == 51 /* AH */;
}

static int decode_ipv6(const uint8_t *p, size_t len, DecodePacket *pkt) {
        if (len < 40 || (p[0] >> 4) != 6)
                return -EBADMSG;
        size_t total = 40 + (size_t) rd16(p + 4);
        if (total > len)
                pkt->truncated = true;
        else
                len = total;

        pkt->family = AF_INET6;
        memcpy(pkt->src, p + 8, 16);
        memcpy(pkt->dst, p + 24, 16);
        pkt->ttl = p[7];

        uint8_t nh = p[6];
        size_t off = 40;
        bool first_fragment = true;
        for (unsigned i = 0; ipv6_is_extension(nh); i++) {
                if (i >= DECODE_MAX_IPV6_EXT)
                        return -EBADMSG;
                if (len - off < 8) {
                        if (pkt->truncated)
                                break; /* the capture ends inside the chain: addresses only */
                        return -EBADMSG;
                }
                size_t elen;
                if (nh == 44) {
                        uint16_t frag = rd16(p + off + 2);
                        pkt->fragment = true;
                        first_fragment = (frag & 0xfff8) == 0;
                        elen = 8;
                } else if (nh == 51)
                        elen = ((size_t) p[off + 1] + 2) * 4;
                else
                        elen = ((size_t) p[off + 1] + 1) * 8;
                if (elen > len - off) {
                        if (pkt->truncated)
                                break;
                        return -EBADMSG;
                }
                nh = p[off];
                off += elen;
        }
        if (ipv6_is_extension(nh)) {
                pkt->l4proto = nh;
                return 0;
        }
        return decode_l4(nh, p + off, len - off, first_fragment, pkt);
}

static int decode_ip(const uint8_t *p, size_t len, DecodePacket *pkt) {
        if (len < 1)
                return -EBADMSG;
        switch (p[0] >> 4) {
        case 4:
                return decode_ipv4(p, len, pkt);
        case 6:
                return decode_ipv6(p, len, pkt);
        default:
                return -EBADMSG;
        }
}

/* The frame after its link header: optionally one 802.1Q tag, then IPv4 or IPv6. */
static int decode_ethertype(uint16_t type, const uint8_t *p, size_t len, DecodePacket *pkt) {
        if (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ) {
                if (len < VLAN_HLEN)
                        return -EBADMSG;
                pkt->has_vlan = true;
                pkt->vlan = rd16(p) & 0x0fff;
                type = rd16(p + 2);
                p += VLAN_HLEN;
                len -= VLAN_HLEN;
                if (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ)
                        return -EPROTONOSUPPORT; /* stacked tags: not on a Docker bridge */
        }
        switch (type) {
        case ETHERTYPE_IPV4:
                return decode_ipv4(p, len, pkt);
        case ETHERTYPE_IPV6:
                return decode_ipv6(p, len, pkt);
        default:
                return -EPROTONOSUPPORT; /* ARP, LLDP, ... */
        }
}

static int decode_nflog(const uint8_t *p, size_t len, DecodePacket *pkt) {
        if (len < NFLOG_HLEN || p[1] != 0 /* version */)
                return -EBADMSG;

        DecodeNflog *n = &pkt->nflog;
        n->present = true;
        n->group = rd16(p + 2);
        n->hook = 0xff;

        const uint8_t *payload = NULL;
        size_t payload_len = 0;
        size_t off = NFLOG_HLEN;
        while (len - off >= NFLOG_TLV_HLEN) {
                size_t tlen = rd16_host(p + off);
                uint16_t type = rd16_host(p + off + 2);
                if (tlen < NFLOG_TLV_HLEN)
                        return -EBADMSG;
                if (tlen > len - off) {
                        if (type != NFULA_PAYLOAD)
                                return -EBADMSG;
                        tlen = len - off; /* a snapped record: the packet is cut, not lost */
                        pkt->truncated = true;
                }
                const uint8_t *v = p + off + NFLOG_TLV_HLEN;
                size_t vlen = tlen - NFLOG_TLV_HLEN;

                switch (type) {
                case NFULA_PACKET_HDR:
                        if (vlen >= 3)
                                n->hook = v[2];
                        break;
                case NFULA_IFINDEX_INDEV:
                        if (vlen >= 4)
                                n->indev = rd32(v);
                        break;
                case NFULA_IFINDEX_OUTDEV:
                        if (vlen >= 4)
                                n->outdev = rd32(v);
                        break;
                case NFULA_PREFIX: {
                        size_t plen = strnlen((const char *) v, vlen);
                        if (plen >= sizeof(n->prefix)) {
                                plen = sizeof(n->prefix) - 1;
                                n->prefix_truncated = true;
                        }
                        memcpy(n->prefix, v, plen);
                        n->prefix[plen] = 0;
                        break;
                }
                case NFULA_PAYLOAD:
                        payload = v;
                        payload_len = vlen;
                        break;
                default:
                        break;
                }

                /* Padding to 4 bytes may be missing after the last TLV of a snapped record. */
                size_t padded = (tlen + 3) & ~(size_t) 3;
                off += padded < len - off ? padded : len - off;
        }
        if (!payload)
                return -EBADMSG; /* a record without the packet says nothing to the watcher */

        pkt->ifindex = n->indev ?: n->outdev;
        /* The family byte names the hook family (inet tables log AF_INET/AF_INET6, bridge ones
         * AF_BRIDGE); the payload starts at the network header either way. */
        return decode_ip(payload, payload_len, pkt);
}

int decode_packet(int dlt, const uint8_t *data, size_t len, DecodePacket *ret) {
        DecodePacket pkt = { .pkttype = 0xff };
        int r;

        if (!data && len > 0)
                return -EINVAL;
        switch (dlt) {
        case DLT_EN10MB:
                if (len < ETH_HLEN)
                        return -EBADMSG;
                r = decode_ethertype(rd16(data + 12), data + ETH_HLEN, len - ETH_HLEN, &pkt);
                break;
        case DLT_LINUX_SLL:
                if (len < SLL_HLEN)
                        return -EBADMSG;
                pkt.pkttype = (uint8_t) rd16(data);
                r = decode_ethertype(rd16(data + 14), data + SLL_HLEN, len - SLL_HLEN, &pkt);
                break;
        case DLT_LINUX_SLL2:
                if (len < SLL2_HLEN)
                        return -EBADMSG;
                pkt.ifindex = rd32(data + 4);
                pkt.pkttype = data[10];
                r = decode_ethertype(rd16(data), data + SLL2_HLEN, len - SLL2_HLEN, &pkt);
                break;
        case DLT_RAW:
        case DLT_IPV4:
        case DLT_IPV6:
                r = decode_ip(data, len, &pkt);
                break;
        case DLT_NFLOG:
                r = decode_nflog(data, len, &pkt);
                break;
        default:
                return -EPROTONOSUPPORT;
        }
        if (r < 0)
                return r;
        if (!pkt.payload) {
                pkt.payload = data + len; /* an empty payload still points inside the buffer */
                pkt.payload_len = 0;
        }
        *ret = pkt;
        return 0;
}
