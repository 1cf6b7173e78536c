/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Network namespaces: enter one by name (as `ip netns add` creates them under /run/netns), and
 * make bridged traffic in the current one visible to the inet hooks (br_netfilter), which is
 * how the single `inet ceredis` table also judges traffic between containers on one bridge.
 */
#include "ceredis.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>

#include "netns.h"

int netns_enter(const char *name) {
        _cleanup_close_ int fd = -1;
        char path[PATH_MAX];

        if (!name || !*name || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        if ((size_t) snprintf(path, sizeof(path), "/run/netns/%s", name) >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (setns(fd, CLONE_NEWNET) < 0)
                return negative_errno();
        return 0;
}

static int write_one(const char *path) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (write(fd, "1\n", 2) != 2)
                return negative_errno();
        return 0;
}

int netns_bridge_nf_enable(void) {
        int k = write_one("/proc/sys/net/bridge/bridge-nf-call-iptables");

        if (k < 0)
                return k;
        return write_one("/proc/sys/net/bridge/bridge-nf-call-ip6tables");
}
