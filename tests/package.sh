#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package (issue 6 items 5, 6): the source tree is copied to a temporary directory
# with packaging/debian as debian/, and
# `dpkg-buildpackage -us -uc -b` builds the .deb there (nocheck: the tests run elsewhere). Its
# contents are checked with dpkg-deb: the binaries (which run), the units, the D-Bus files, the
# man pages, /etc/ceredis/policy.yaml (the reference policy) and agent.conf as conffiles, and
# maintainer scripts that never enable nor start the agent, so installing applies no rule.
# lintian must report no error. Nothing is installed; the temporary directory goes on every
# exit. Runs with CEREDIS_BUILD=<build dir> (a configured tree); the build takes ~2-3 minutes.
set -uo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${CEREDIS_BUILD:-$top/build}
# shellcheck source=tests/lib/tap.sh
. "$top/tests/lib/tap.sh"

work=$(mktemp -d /tmp/ceredis-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in dpkg-buildpackage dh lintian; do
        command -v "$tool" >/dev/null || { skip_check "build the package" "$tool is not installed (./dev setup)"; tap_summary; exit; }
done

# The source tree as ./dev builds it (git's files, tracked or new, minus what .gitignore names),
# or, outside a git checkout, what `make dist` ships.
src=$work/ceredis-agent
mkdir -p "$src"
if git -C "$top" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$top" && git ls-files -co --exclude-standard -z |
                while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
                tar --null -T - -cf -) | tar -C "$src" -xf - 2>"$work/dist.log"
        rc=$?
else
        make -C "$build" -s distdir distdir="$src" >"$work/dist.log" 2>&1
        rc=$?
fi
if [ "$rc" -ne 0 ] || [ ! -d "$src/packaging/debian" ]; then
        not_ok "copy the source tree" "$(tail -n 15 "$work/dist.log")"
        tap_summary
        exit
fi
cp -r "$src/packaging/debian" "$src/debian"

start=$(date +%s)
if (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -us -uc -b) \
        >"$work/build.log" 2>&1; then
        ok "dpkg-buildpackage -us -uc -b builds in $(($(date +%s) - start))s"
else
        not_ok "dpkg-buildpackage -us -uc -b" "$(tail -n 30 "$work/build.log")"
        tap_summary
        exit
fi
debs=("$work"/ceredis-agent_*.deb)
deb=${debs[0]}
if [ ! -f "$deb" ]; then
        not_ok "a .deb is built" "$(ls "$work")"
        tap_summary
        exit
fi
ok "built $(basename "$deb")"

# --- contents --------------------------------------------------------------------------------
contents=$(dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|')
for f in /usr/sbin/ceredis-agent /usr/bin/ceredisctl \
        /lib/systemd/system/ceredis-agent.service /lib/systemd/system/ceredis-audit.service \
        /lib/systemd/system/ceredis-audit.timer /usr/lib/sysusers.d/ceredis.conf \
        /usr/lib/tmpfiles.d/ceredis.conf /usr/share/dbus-1/system.d/org.ceredis.Agent1.conf \
        /usr/share/dbus-1/system-services/org.ceredis.Agent1.service \
        /usr/share/man/man8/ceredis-agent.8.gz /usr/share/man/man8/ceredisctl.8.gz \
        /etc/ceredis/policy.yaml /etc/ceredis/agent.conf /usr/share/doc/ceredis-agent/copyright; do
        if grep -qx -- "$f" <<<"$contents"; then ok "the package ships $f"
        else not_ok "the package ships $f"; fi
done

x=$work/extract
dpkg-deb -x "$deb" "$x"
dpkg-deb -e "$deb" "$x/DEBIAN"
check "the packaged ceredis-agent runs (--version)" "$x/usr/sbin/ceredis-agent" --version
check "the packaged ceredisctl checks the packaged policy" \
        "$x/usr/bin/ceredisctl" policy check "$x/etc/ceredis/policy.yaml"
check "/etc/ceredis/policy.yaml is the reference policy" cmp "$x/etc/ceredis/policy.yaml" "$top/policies/ceredis.yaml"
check "the unit runs the packaged binary" grep -qx 'ExecStart=/usr/sbin/ceredis-agent --config /etc/ceredis/agent.conf' \
        "$x/lib/systemd/system/ceredis-agent.service"
for f in /etc/ceredis/policy.yaml /etc/ceredis/agent.conf; do
        check "$f is a conffile" grep -qx "$f" "$x/DEBIAN/conffiles"
done

# --- installing applies no rule ------------------------------------------------------------------
# No maintainer script enables or starts a unit. With --no-enable, dh's only
# `deb-systemd-helper enable` sits under `debian-installed` and `was-enabled`: it re-creates the
# links of a unit the operator had enabled, on upgrade; without it, enable runs on a fresh
# install. postinst creates the group from sysusers.d.
scripts=$(cat "$x"/DEBIAN/{preinst,postinst,prerm,postrm} 2>/dev/null | grep -v '^[[:space:]]*#')
bad=$(grep -nE 'deb-systemd-invoke +(start|restart)|systemctl .*(start|enable)|ceredis-agent |ceredisctl +apply' <<<"$scripts"
      awk '/deb-systemd-helper +debian-installed/ { match($0, /^[\t ]*/); ind = substr($0, 1, RLENGTH); guard = 1; next }
           guard && $0 == ind "fi" { guard = 0 }
           /deb-systemd-helper +enable/ && !guard { print NR ": " $0 }' <<<"$scripts")
if [ -z "$bad" ] && grep -q 'deb-systemd-helper update-state' <<<"$scripts"; then
        ok "the maintainer scripts register the units but never enable or start them"
else
        not_ok "the maintainer scripts register the units but never enable or start them" "${bad:-no deb-systemd-helper call at all}"
fi
check "postinst creates the ceredis group with systemd-sysusers" grep -q 'systemd-sysusers ceredis.conf' "$x/DEBIAN/postinst"

# --- lintian -------------------------------------------------------------------------------------
changes=("$work"/ceredis-agent_*.changes)
[ -f "${changes[0]}" ] || changes=("$deb")
lintian_out=$(lintian --no-cfg "${changes[0]}" 2>&1)
errors=$(grep '^E:' <<<"$lintian_out")
if [ -z "$errors" ] && ! grep -q '^internal error\|^lintian: ' <<<"$lintian_out"; then
        ok "lintian reports no error ($(grep -c '^W:' <<<"$lintian_out") warnings)"
        grep '^W:' <<<"$lintian_out" | sed 's/^/    # /'
else
        not_ok "lintian reports no error" "$errors" "$(grep -v '^[WIN]:' <<<"$lintian_out" | head -n 5)"
fi
# The same check must see errors: a copy of the package without its copyright file.
rm -f "$x/usr/share/doc/ceredis-agent/copyright"
sed -i '\|usr/share/doc/ceredis-agent/copyright|d' "$x/DEBIAN/md5sums"
broken_out=$(dpkg-deb -b --root-owner-group "$x" "$work/broken.deb" 2>&1 &&
             lintian --no-cfg "$work/broken.deb" 2>&1)
if grep -q '^E: .*no-copyright-file' <<<"$broken_out"; then
        ok "lintian reports an error on a copy without its copyright file"
else
        not_ok "lintian reports an error on a copy without its copyright file" "$(tail -n 10 <<<"$broken_out")"
fi

tap_summary
