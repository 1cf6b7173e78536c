/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredis-agent: the host daemon. It installs the policy's ruleset in one batch, then runs one
 * sd-event loop that keeps it there (agent/daemon/enforcer.c): nf_tables notifications and a
 * periodic backstop trigger verifies, drift is repaired and reported as JSON lines on stdout.
 * SIGHUP reloads the policy (the old one stays on any error); SIGTERM/SIGINT exit leaving the
 * rules in the kernel: stopping the agent never opens the host.
 */
#include "ceredis.h"

#include "daemon/bus.h"
#include "daemon/daemon.h"
#include "daemon/docker.h"
#include "daemon/sinks.h"
#include "eventlog.h"

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#define DEFAULT_POLICY "/etc/ceredis/policy.yaml"
#define DEFAULT_DOCKER_HOST "unix:///run/docker.sock"
#define CONFIG_MAX_SIZE (64u * 1024u)

static void help(void) {
        printf("Usage: ceredis-agent [OPTIONS]\n"
               "\n"
               "Enforce a CEREDIS policy with nftables and keep it enforced.\n"
               "\n"
               "  --policy FILE        policy to enforce (default " DEFAULT_POLICY ")\n"
               "  --config FILE        key=value file with the long options below as keys\n"
               "                       (policy, endpoints, host, netns, state-dir, nflog-group,\n"
               "                       docker-host, eventlog-key, metrics-listen,\n"
               "                       metrics-textfile, alertmanager-url, journal); the command\n"
               "                       line wins\n"
               "  --endpoints FILE     static service addresses, JSON {\"service\": [\"ADDR\"...]}\n"
               "  --host NAME          host of the policy this machine is (default: its only host)\n"
               "  --netns NAME         enforce inside network namespace /run/netns/NAME\n"
               "  --state-dir DIR      state directory (default " STATE_DIR_DEFAULT ")\n"
               "  --nflog-group N      NFLOG group of the logging rules (default %u)\n"
               "  --docker-host URL    Docker Engine API, unix:///PATH (default " DEFAULT_DOCKER_HOST ");\n"
               "                       service addresses follow its containers; `none` or\n"
               "                       --endpoints turn Docker mode off\n"
               "  --eventlog-key FILE  key of the tamper-evident event log (default\n"
               "                       " EVENTLOG_KEY_PATH_DEFAULT ", created 0600 if missing)\n"
               "  --metrics-listen ADDR:PORT\n"
               "                       Prometheus scrape endpoint /metrics (default\n"
               "                       " SINKS_METRICS_LISTEN_DEFAULT ", inside --netns; `none` turns it\n"
               "                       off; a wildcard address is refused)\n"
               "  --metrics-textfile DIR  also write DIR/ceredis.prom for node_exporter's\n"
               "                       textfile collector\n"
               "  --alertmanager-url URL  post violations as alerts to this Alertmanager (API v2)\n"
               "  --journal yes|no     one journal entry per event, CEREDIS_* fields (default yes)\n"
               "  --foreground         do not detach (implied under systemd)\n"
               "  --help, --version\n"
               "\n"
               "Events are JSON lines on stdout; logs go to stderr. SIGHUP reloads the policy;\n"
               "SIGTERM leaves the rules in place (use `ceredisctl disable` to remove them).\n",
               RULESET_NFLOG_GROUP_DEFAULT);
}

static int set_string(char **field, const char *value) {
        char *v = strdup(value);

        if (!v)
                return -ENOMEM;
        free(*field);
        *field = v;
        return 0;
}

static int parse_group(const char *s, uint16_t *ret) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v == 0 || v > UINT16_MAX)
                return -EINVAL;
        *ret = (uint16_t) v;
        return 0;
}

/* ADDR:PORT, or `none` (stored as ""). A wildcard would serve the metrics on the public
 * interfaces too: refused with its own message. */
static int set_metrics_listen(Context *c, const char *value) {
        struct sockaddr_storage sa;
        socklen_t len;
        int k;

        if (streq(value, "none"))
                return set_string(&c->metrics_listen, "");
        k = metrics_listen_parse(value, &sa, &len);
        if (k == -EADDRNOTAVAIL)
                log_error("--metrics-listen %s: a wildcard address would serve the metrics on every "
                          "interface, public ones included; give one address, e.g. "
                          SINKS_METRICS_LISTEN_DEFAULT, value);
        if (k < 0)
                return k;
        return set_string(&c->metrics_listen, value);
}

static int parse_yes_no(const char *s, bool *ret) {
        if (streq(s, "yes"))
                *ret = true;
        else if (streq(s, "no"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* One option by its long name, from argv or the config file. `seen` keeps argv's choice. */
enum {
        OPT_POLICY = 0x100,
        OPT_CONFIG,
        OPT_ENDPOINTS,
        OPT_HOST,
        OPT_NETNS,
        OPT_STATE_DIR,
        OPT_NFLOG_GROUP,
        OPT_DOCKER_HOST,
        OPT_EVENTLOG_KEY,
        OPT_METRICS_LISTEN,
        OPT_METRICS_TEXTFILE,
        OPT_ALERTMANAGER_URL,
        OPT_JOURNAL,
        OPT_FOREGROUND,
        OPT_HELP,
        OPT_VERSION,
};

static const struct option options[] = {
        { "policy", required_argument, NULL, OPT_POLICY },
        { "config", required_argument, NULL, OPT_CONFIG },
        { "endpoints", required_argument, NULL, OPT_ENDPOINTS },
        { "host", required_argument, NULL, OPT_HOST },
        { "netns", required_argument, NULL, OPT_NETNS },
        { "state-dir", required_argument, NULL, OPT_STATE_DIR },
        { "nflog-group", required_argument, NULL, OPT_NFLOG_GROUP },
        { "docker-host", required_argument, NULL, OPT_DOCKER_HOST },
        { "eventlog-key", required_argument, NULL, OPT_EVENTLOG_KEY },
        { "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
        { "metrics-textfile", required_argument, NULL, OPT_METRICS_TEXTFILE },
        { "alertmanager-url", required_argument, NULL, OPT_ALERTMANAGER_URL },
        { "journal", required_argument, NULL, OPT_JOURNAL },
        { "foreground", no_argument, NULL, OPT_FOREGROUND },
        { "help", no_argument, NULL, OPT_HELP },
        { "version", no_argument, NULL, OPT_VERSION },
        {},
};

static int set_option(Context *c, int opt, const char *value) {
        switch (opt) {
        case OPT_POLICY:
                return set_string(&c->policy_path, value);
        case OPT_ENDPOINTS:
                return set_string(&c->endpoints_path, value);
        case OPT_HOST:
                return set_string(&c->host, value);
        case OPT_NETNS:
                return set_string(&c->netns, value);
        case OPT_STATE_DIR:
                return set_string(&c->state_dir, value);
        case OPT_DOCKER_HOST:
                return set_string(&c->docker_host, value);
        case OPT_EVENTLOG_KEY:
                return set_string(&c->eventlog_key, value);
        case OPT_NFLOG_GROUP:
                return parse_group(value, &c->nflog_group);
        case OPT_METRICS_LISTEN:
                return set_metrics_listen(c, value);
        case OPT_METRICS_TEXTFILE:
                return set_string(&c->metrics_textfile, value);
        case OPT_ALERTMANAGER_URL:
                return set_string(&c->alertmanager_url, value);
        case OPT_JOURNAL: {
                bool on;
                int k = parse_yes_no(value, &on);

                if (k >= 0)
                        c->journal_off = !on;
                return k;
        }
        default:
                return -EINVAL;
        }
}

/* A tiny config file: `key = value` lines, '#' comments, keys are the long option names. */
static int load_config(Context *c, const char *path, const bool *seen) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        unsigned line = 0;
        int k;

        k = state_read_file(path, CONFIG_MAX_SIZE, &text, &size);
        if (k < 0) {
                log_error("%s: %s", path, strerror(-k));
                return k;
        }
        for (char *p = text, *next; p && *p; p = next) {
                char *eq, *key, *value, *end;
                const struct option *o;

                line++;
                next = strchr(p, '\n');
                if (next)
                        *next++ = 0;
                p += strspn(p, " \t");
                if (*p == 0 || *p == '#')
                        continue;
                eq = strchr(p, '=');
                if (!eq) {
                        log_error("%s:%u: expected key = value", path, line);
                        return -EINVAL;
                }
                *eq = 0;
                key = p;
                for (end = eq; end > key && strchr(" \t", end[-1]); end--)
                        end[-1] = 0;
                value = eq + 1 + strspn(eq + 1, " \t");
                for (end = value + strlen(value); end > value && strchr(" \t\r", end[-1]); end--)
                        end[-1] = 0;
                for (o = options; o->name; o++)
                        if (streq(o->name, key) && o->has_arg == required_argument &&
                            o->val != OPT_CONFIG)
                                break;
                if (!o->name) {
                        log_error("%s:%u: unknown key '%s'", path, line, key);
                        return -EINVAL;
                }
                if (seen[o->val - OPT_POLICY])
                        continue;
                k = set_option(c, o->val, value);
                if (k < 0) {
                        log_error("%s:%u: invalid value for %s: %s", path, line, key, value);
                        return k;
                }
        }
        return 0;
}

/* 0 to run, 1 to exit 0 (help/version), negative on a usage error. */
static int parse_argv(Context *c, int argc, char *argv[]) {
        bool seen[OPT_VERSION - OPT_POLICY + 1] = {};
        const char *config = NULL;
        int opt, k;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (opt) {
                case OPT_HELP:
                        help();
                        return 1;
                case OPT_VERSION:
                        printf("ceredis-agent %s\n", PACKAGE_VERSION);
                        return 1;
                case OPT_FOREGROUND:
                        c->foreground = true;
                        break;
                case OPT_CONFIG:
                        config = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        k = set_option(c, opt, optarg);
                        if (k < 0) {
                                log_error("invalid value for --%s: %s", options[opt - OPT_POLICY].name,
                                          optarg);
                                return k;
                        }
                        seen[opt - OPT_POLICY] = true;
                }
        }
        if (optind < argc) {
                log_error("unexpected argument '%s' (see --help)", argv[optind]);
                return -EINVAL;
        }
        if (config) {
                k = load_config(c, config, seen);
                if (k < 0)
                        return k;
        }
        if ((!c->policy_path && (k = set_string(&c->policy_path, DEFAULT_POLICY)) < 0) ||
            (!c->state_dir && (k = set_string(&c->state_dir, STATE_DIR_DEFAULT)) < 0) ||
            (!c->docker_host && (k = set_string(&c->docker_host, DEFAULT_DOCKER_HOST)) < 0) ||
            (!c->eventlog_key && (k = set_string(&c->eventlog_key, EVENTLOG_KEY_PATH_DEFAULT)) < 0))
                return k;
        /* Docker mode unless told otherwise: a static endpoints file is the other source of
         * service addresses, and the two would fight. */
        {
                _cleanup_free_ char *path = NULL;

                k = docker_client_socket_path(c->docker_host, &path);
                if (k < 0) {
                        log_error("invalid --docker-host %s: expected unix:///PATH or none",
                                  c->docker_host);
                        return k;
                }
                if (!path || c->endpoints_path) {
                        if (path && seen[OPT_DOCKER_HOST - OPT_POLICY])
                                log_warning("--endpoints given: not following Docker at %s",
                                            c->docker_host);
                        free(c->docker_host);
                        c->docker_host = NULL;
                }
        }
        return 0;
}

/* Detach like a classic daemon, after the first batch so that a broken policy still fails
 * the start. Under systemd (NOTIFY_SOCKET) we stay the main process. */
static int detach(void) {
        pid_t pid;
        int fd;

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid > 0)
                _exit(0);
        if (setsid() < 0)
                return negative_errno();
        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid > 0)
                _exit(0);
        fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
                (void) dup2(fd, STDIN_FILENO);
                close(fd);
        }
        (void) chdir("/");
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Context *c = userdata;

        if (si->ssi_signo == SIGHUP) {
                (void) sd_notify(false, "RELOADING=1");
                (void) enforcer_reload(c, NULL, NULL, 0); /* reloads the watcher too */
                (void) sd_notify(false, "READY=1");
                return 0;
        }
        log_info("received %s: exiting, the rules stay in the kernel", strsignal(si->ssi_signo));
        (void) sd_notify(false, "STOPPING=1");
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void on_violation(const json_t *event, void *userdata) {
        Context *c = userdata;

        bus_emit_violation(c->bus, event);
}

/* Reporting never gates enforcing: a sink that cannot start is logged and left out. */
static Sinks *start_sinks(Context *c) {
        Sinks *sinks = NULL;
        SinksConfig sc;
        int errors[_SINKS_PART_MAX], k;

        sinks_config_init(&sc);
        sc.metrics_listen = c->metrics_listen ? c->metrics_listen : SINKS_METRICS_LISTEN_DEFAULT;
        sc.textfile_dir = c->metrics_textfile;
        sc.alertmanager_url = c->alertmanager_url;
        sc.journal = !c->journal_off;
        k = sinks_new_partial(&sc, c->event, &sinks, errors);
        if (k < 0) {
                log_error("reporting sinks disabled: %s", strerror(-k));
                return NULL;
        }
        for (size_t i = 0; i < _SINKS_PART_MAX; i++)
                if (errors[i] < 0)
                        log_error("%s disabled: %s", sinks_part_to_string(i), strerror(-errors[i]));
        if (sinks_metrics_port(sinks))
                log_info("serving metrics on %s", sc.metrics_listen);
        return sinks;
}

/* The agent's own life in the sinks (the journal above all). */
static void sinks_agent_event(Context *c, EventKind kind) {
        char detail[EVENT_MAX_DETAIL];
        Event e;

        if (!c->sinks)
                return;
        event_init(&e, kind);
        EVENT_SET(e.host, c->target.host ? c->target.host : "");
        e.severity = POLICY_SEVERITY_LOW;
        snprintf(detail, sizeof(detail), "%s %s (sha256 %s)",
                 kind == EVENT_AGENT_STARTED ? "enforcing" : "stopped; the rules stay in place:",
                 c->policy_path, c->target.sha256);
        EVENT_SET(e.detail, detail);
        sinks_emit(c->sinks, &e);
}

static int run(int argc, char *argv[]) {
        _cleanup_(context_done) Context c = {};
        _cleanup_(sinks_freep) Sinks *sinks = NULL; /* freed before c, after the watcher */
        _cleanup_(bus_freep) Bus *bus = NULL;       /* declared after c: freed before it */
        _cleanup_(watch_freep) Watch *watch = NULL; /* freed first: it may still emit */
        sigset_t mask;
        int k;

        k = parse_argv(&c, argc, argv);
        if (k != 0)
                return k > 0 ? 0 : 2;
        /* A dead reader of our events must not kill us. */
        (void) signal(SIGPIPE, SIG_IGN);

        k = enforcer_start(&c);
        if (k != 0)
                return k;

        if (!c.foreground && !getenv("NOTIFY_SOCKET")) {
                k = detach();
                if (k < 0) {
                        log_error("cannot detach: %s", strerror(-k));
                        return 2;
                }
        }

        /* The loop is created after detaching: sd-event objects do not survive fork(). */
        k = sd_event_default(&c.event);
        if (k < 0)
                goto fail;
        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                k = negative_errno();
                goto fail;
        }
        if ((k = sd_event_add_signal(c.event, NULL, SIGHUP, on_signal, &c)) < 0 ||
            (k = sd_event_add_signal(c.event, NULL, SIGTERM, on_signal, &c)) < 0 ||
            (k = sd_event_add_signal(c.event, NULL, SIGINT, on_signal, &c)) < 0)
                goto fail;
        /* Pings WATCHDOG=1 at half of WATCHDOG_USEC when the service manager asks for it. */
        k = sd_event_set_watchdog(c.event, true);
        if (k < 0)
                goto fail;
        k = reporter_new(c.event, STDOUT_FILENO, c.target.host, &c.reporter);
        if (k < 0)
                goto fail;
        c.sinks = sinks = start_sinks(&c);
        k = enforcer_attach(&c);
        if (k < 0)
                goto fail;
        k = docker_client_start(&c);
        if (k < 0)
                goto fail;
        /* Watching never gates enforcing: a watcher that cannot start is logged, not fatal. */
        k = watch_new(&(WatchConfig) { .event = c.event, .reporter = c.reporter, .nft = c.nft,
                                       .state_dir = c.state_dir, .key_path = c.eventlog_key,
                                       .host = c.target.host,
                                       .on_violation = on_violation, .userdata = &c,
                                       .sinks = c.sinks,
                                       .nflog_group = c.nflog_group },
                      &watch);
        if (k < 0)
                log_error("traffic watcher disabled: %s", strerror(-k));
        else if (watch_load(watch, c.policy_path, c.endpoints_path) < 0)
                watch_free(TAKE_PTR(watch));
        else
                c.watch = watch;

        /* The D-Bus API is for operators: enforcement never waits on it. */
        k = bus_start(&c, &bus);
        if (k < 0)
                log_error("D-Bus API disabled: cannot publish %s on the system bus: %s", BUS_NAME,
                          strerror(-k));
        c.bus = bus;

        (void) reporter_emit(c.reporter, "started",
                             json_pack("{s:s, s:s, s:s*}", "policy", c.policy_path, "policy_sha256",
                                       c.target.sha256, "netns", c.netns));
        sinks_agent_event(&c, EVENT_AGENT_STARTED);
        (void) sd_notify(false, "READY=1");
        k = sd_event_loop(c.event);
        reporter_flush(c.reporter);
        /* The watcher's last aggregated events reach the sinks before they flush. */
        c.watch = NULL;
        watch_free(TAKE_PTR(watch));
        sinks_agent_event(&c, EVENT_AGENT_STOPPED);
        sinks_flush(sinks);
        if (k < 0)
                goto fail;
        return 0;

fail:
        log_error("event loop: %s", strerror(-k));
        return 2;
}

int main(int argc, char *argv[]) {
        return run(argc, argv);
}
