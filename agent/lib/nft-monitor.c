/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The nf_tables monitor: a netlink socket subscribed to NFNLGRP_NFTABLES, drained without
 * blocking, telling the daemon when someone (or something) touched the agent's tables so
 * that it verifies and repairs them. We never act on the content of a notification: it only
 * schedules a verify against the kernel's own dump, so a lost or forged message can at worst
 * cause a spurious verify, and an overrun (ENOBUFS) is answered with a verify too.
 */
#include "ceredis.h"

#include "nft-monitor.h"
#include "nft.h"

#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

/* Every table-scoped message carries the table name as attribute 1 of its own enum:
 * NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE,
 * NFTA_SET_ELEM_LIST_TABLE, NFTA_OBJ_TABLE, NFTA_FLOWTABLE_TABLE. */
#define TABLE_ATTR 1
#define MAX_ATTR 32 /* past every nft attribute enum we look at */

static bool msg_is_table_scoped(uint16_t type) {
        switch (type) {
        case NFT_MSG_NEWTABLE:
        case NFT_MSG_DELTABLE:
        case NFT_MSG_NEWCHAIN:
        case NFT_MSG_DELCHAIN:
        case NFT_MSG_NEWRULE:
        case NFT_MSG_DELRULE:
        case NFT_MSG_NEWSET:
        case NFT_MSG_DELSET:
        case NFT_MSG_NEWSETELEM:
        case NFT_MSG_DELSETELEM:
        case NFT_MSG_NEWOBJ:
        case NFT_MSG_DELOBJ:
        case NFT_MSG_NEWFLOWTABLE:
        case NFT_MSG_DELFLOWTABLE:
                return true;
        default:
                return false;
        }
}

static int attr_cb(const struct nlattr *attr, void *data) {
        const struct nlattr **tb = data;
        uint16_t type = mnl_attr_get_type(attr);

        if (mnl_attr_type_valid(attr, MAX_ATTR) < 0)
                return MNL_CB_OK; /* newer kernels add attributes: ignore, do not fail */
        if (type == TABLE_ATTR && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
                return MNL_CB_ERROR;
        tb[type] = attr;
        return MNL_CB_OK;
}

/* 1 if this one message names our table, 0 otherwise (including when it is malformed). */
static int msg_touches_ours(const struct nlmsghdr *nlh) {
        const struct nlattr *tb[MAX_ATTR + 1] = {};
        uint16_t type;

        if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
                return 0;
        type = NFNL_MSG_TYPE(nlh->nlmsg_type);
        if (!msg_is_table_scoped(type))
                return 0;
        if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct nfgenmsg)))
                return 0;
        if (mnl_attr_parse(nlh, sizeof(struct nfgenmsg), attr_cb, tb) < 0)
                return 0;
        if (!tb[TABLE_ATTR])
                return 0;
        return streq(mnl_attr_get_str(tb[TABLE_ATTR]), RULESET_TABLE);
}

int nft_monitor_parse(const void *buf, size_t len) {
        const struct nlmsghdr *nlh = buf;
        int touched = 0;

        /* mnl_nlmsg_ok() checks that the header and the announced length fit in what is
         * left; a lying length ends the walk. */
        if (len > INT32_MAX)
                return 0;
        for (int left = (int) len; mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left))
                if (msg_touches_ours(nlh) > 0)
                        touched = 1;
        return touched;
}

int nft_monitor_open(Nft **ret) {
        _cleanup_(nft_closep) Nft *m = NULL;
        int fd, group = NFNLGRP_NFTABLES, rcvbuf = (int) NFT_MONITOR_RCVBUF, flags, k;

        k = nft_open(&m);
        if (k < 0)
                return k;
        fd = nft_fd(m);
        if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
                return negative_errno();
        /* SO_RCVBUFFORCE passes the rmem_max cap when we have CAP_NET_ADMIN (we do: we
         * program nf_tables); fall back to what the cap allows. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0 &&
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
                return negative_errno();
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return negative_errno();
        *ret = TAKE_PTR(m);
        return 0;
}

int nft_monitor_drain(Nft *m) {
        /* Netlink messages are at most a page in practice but can be bigger; MNL_SOCKET_BUFFER_SIZE
         * is what libmnl recommends for a receive. */
        _cleanup_free_ char *buf = malloc(MNL_SOCKET_BUFFER_SIZE);
        int fd = nft_fd(m), touched = 0;

        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = recv(fd, buf, MNL_SOCKET_BUFFER_SIZE, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return touched;
                        /* Overrun: we lost notifications, so we cannot tell; verify. */
                        if (errno == ENOBUFS) {
                                touched = 1;
                                continue;
                        }
                        return negative_errno();
                }
                if (n == 0)
                        return touched;
                if (nft_monitor_parse(buf, (size_t) n) > 0)
                        touched = 1;
        }
}
