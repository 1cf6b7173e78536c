/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Packet capture, the source of "packets -> decoders -> flows -> violations": libpcap handles
 * on the Docker bridges (TPACKET_V3 ring, short block timeout rather than immediate mode, a
 * kernel BPF filter generated from the policy so that only packets that can matter cross into
 * user space) and on the NFLOG group the agent's ruleset logs to (libpcap's `nflog:N`). Each
 * handle is non-blocking and exposes a selectable fd for the caller's event loop.
 *
 * Sockets are opened in the calling thread's network namespace (enter it first). The filter
 * generator is pure; everything else does I/O and reports failures as negative errnos with
 * libpcap's message in `err`.
 */
#pragma once

#include "ceredis.h"

#include "policy.h"

#define CAPTURE_SNAPLEN_BRIDGE 2048      /* headers plus the first bytes of a request */
#define CAPTURE_SNAPLEN_NFLOG 256        /* headers are all an NFLOG record must carry */
#define CAPTURE_TIMEOUT_MS 5             /* TPACKET_V3 block retire timeout */
#define CAPTURE_BUFFER_BRIDGE (8 << 20)  /* ring per bridge */
#define CAPTURE_BUFFER_NFLOG (4 << 20)   /* netlink receive buffer */
#define CAPTURE_MAX_FILTER 65536u
#define CAPTURE_MAX_PORTS 1024u          /* ports named in one filter; beyond, all TCP */

typedef struct Capture Capture;

typedef struct CaptureStats {
        uint64_t received; /* packets the filter accepted (as libpcap counts them) */
        uint64_t dropped;  /* dropped by the kernel: ring or socket buffer full */
        uint64_t ifdropped;
} CaptureStats;

/* Open interface `ifname` (promiscuous, so that frames bridged between containers are seen)
 * with BPF `filter` (NULL: everything). */
int capture_open_interface(const char *ifname, const char *filter, Capture **ret, char *err, size_t err_size);
/* Open the NFLOG group `group`. */
int capture_open_nflog(uint16_t group, Capture **ret, char *err, size_t err_size);
void capture_close(Capture *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Capture *, capture_close);

const char *capture_name(const Capture *c);
int capture_fd(const Capture *c);
int capture_datalink(const Capture *c);

/* Called for each packet: `data` holds `caplen` bytes, valid during the call only. */
typedef void (*CapturePacketFn)(const uint8_t *data, size_t caplen, void *userdata);

/* Hand at most `max` waiting packets to `fn` without blocking. Returns how many, 0 when none
 * was waiting, or a negative errno (-ENETDOWN when the interface went away). */
int capture_dispatch(Capture *c, int max, CapturePacketFn fn, void *userdata);

/* Counters since open, monotonic even where libpcap's wrap. */
int capture_stats(Capture *c, CaptureStats *ret);

/* The Docker bridges of the current network namespace: docker0 and br-<network id>.
 * *ret is a NULL-terminated array of names, freed with capture_strv_free(). */
int capture_list_bridges(char ***ret);
void capture_strv_free(char **l);

/* The bridges' BPF filter for `p`: TCP segments carrying client payload to the ports of the
 * HTTP and PostgreSQL services where a write is a violation (a read-only flow or a forbid with
 * `access: write` leads there) or is journaled (tagged evaluation-store). With `with_syns`, also the connection openings to every
 * service port, for when the NFLOG group cannot be read and the watcher must judge L4 itself.
 * *ret is NULL when nothing on the bridges can matter. Pure. */
int capture_filter_from_policy(const Policy *p, bool with_syns, char **ret);
