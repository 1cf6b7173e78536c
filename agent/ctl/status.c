/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ceredisctl status and reload: the verbs that need the running agent, over D-Bus
 * (org.ceredis.Agent1 on the system bus; DBUS_SYSTEM_BUS_ADDRESS is honoured by sd-bus).
 * status prints the daemon's Status() JSON as a table (colour only on a terminal) or as is
 * with --json, and exits 0 when enforcing, 1 when the agent runs but does not enforce, 2 when
 * it cannot be asked. reload asks the agent to reload its configured policy; an invalid
 * policy is exit 1 and the agent keeps the old one.
 */
#include "ceredis.h"

#include <getopt.h>
#include <jansson.h>
#include <systemd/sd-bus.h>

#include "ctl/ctl.h"

#define AGENT_NAME "org.ceredis.Agent1"
#define AGENT_PATH "/org/ceredis/Agent1"
#define AGENT_INTERFACE "org.ceredis.Agent1"
#define AGENT_ERROR_POLICY_INVALID "org.ceredis.Agent1.Error.PolicyInvalid"
#define CALL_TIMEOUT_USEC (30u * 1000u * 1000u)

/* --json and --help only: 0 to run, 1 for --help (printed), negative on a usage error. */
static int parse_args(const char *verb, const char *help, int argc, char *argv[], bool *ret_json) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool json = false;
        int opt;

        optind = 1;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: ceredisctl %s [--json]\n\n%s\n", verb, help);
                        return 1;
                default:
                        fprintf(stderr, "ceredisctl %s: unknown option '%s'\nUsage: ceredisctl %s [--json]\n",
                                verb, argv[optind - 1], verb);
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "ceredisctl %s: unexpected argument '%s'\n", verb, argv[optind]);
                return -EINVAL;
        }
        *ret_json = json;
        return 0;
}

/* Call METHOD without arguments; on failure print why and return the exit code. */
static int call(const char *verb, const char *method, sd_bus_message **ret_reply) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        int k, ret;

        k = sd_bus_open_system(&bus);
        if (k < 0) {
                fprintf(stderr, "ceredisctl %s: cannot connect to the system bus: %s\n", verb,
                        strerror(-k));
                return CTL_EXIT_ERROR;
        }
        (void) sd_bus_set_method_call_timeout(bus, CALL_TIMEOUT_USEC);
        k = sd_bus_call_method(bus, AGENT_NAME, AGENT_PATH, AGENT_INTERFACE, method, &error,
                               ret_reply, "");
        if (k >= 0)
                return CTL_EXIT_OK;
        if (sd_bus_error_has_names(&error, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                fprintf(stderr, "ceredisctl %s: the agent is not running (nobody owns %s on the "
                        "system bus)\n", verb, AGENT_NAME);
        else
                fprintf(stderr, "ceredisctl %s: %s\n", verb,
                        error.message ? error.message : strerror(-k));
        ret = sd_bus_error_has_name(&error, AGENT_ERROR_POLICY_INVALID) ? CTL_EXIT_FAIL : CTL_EXIT_ERROR;
        sd_bus_error_free(&error);
        return ret;
}

static int get_json(const char *verb, const char *method, json_t **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_error_t jerr;
        const char *text;
        json_t *o;
        int k;

        k = call(verb, method, &reply);
        if (k != CTL_EXIT_OK)
                return k;
        if (sd_bus_message_read(reply, "s", &text) < 0 ||
            !(o = json_loads(text, 0, &jerr)) || !json_is_object(o)) {
                fprintf(stderr, "ceredisctl %s: the agent's answer is not a JSON object\n", verb);
                return CTL_EXIT_ERROR;
        }
        *ret = o;
        return CTL_EXIT_OK;
}

static const char *str(const json_t *o, const char *key, const char *fallback) {
        const char *s = json_string_value(json_object_get(o, key));

        return s && *s ? s : fallback;
}

static void print_row(const char *label, const char *value) {
        printf("%-22s %s\n", label, value);
}

static void print_status(const json_t *o) {
        bool colour = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
        const char *state = str(o, "state", "?");
        const json_t *w = json_object_get(o, "watching");
        char line[256];

        snprintf(line, sizeof(line), "%s%s%s", colour ? (streq(state, "enforcing") ? "\033[32m" : "\033[31m") : "",
                 state, colour ? "\033[0m" : "");
        print_row("State:", line);
        print_row("Policy:", str(o, "policy", "-"));
        print_row("Policy sha256:", str(o, "policy_sha256", "-"));
        print_row("Mode:", str(o, "mode", "-"));
        print_row("Host:", str(o, "host", "-"));
        print_row("Network namespace:", str(o, "netns", "(the agent's own)"));
        print_row("Pending confirmation:", str(o, "pending_confirmation", "none"));
        print_row("Docker:", json_is_true(json_object_get(o, "docker")) ? "following containers" : "off");
        if (json_is_object(w)) {
                snprintf(line, sizeof(line), "%" JSON_INTEGER_FORMAT " packets, %" JSON_INTEGER_FORMAT
                         " violations, %" JSON_INTEGER_FORMAT " dropped, %" JSON_INTEGER_FORMAT " contained",
                         json_integer_value(json_object_get(w, "packets")),
                         json_integer_value(json_object_get(w, "violations")),
                         json_integer_value(json_object_get(w, "dropped")),
                         json_integer_value(json_object_get(w, "contained")));
                print_row("Traffic watcher:", line);
        } else
                print_row("Traffic watcher:", "off");
        snprintf(line, sizeof(line), "%" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT " failing)",
                 json_integer_value(json_object_get(o, "repairs")),
                 json_integer_value(json_object_get(o, "repair_failures")));
        print_row("Drift repairs:", line);
        print_row("Agent version:", str(o, "version", "?"));
}

int verb_status(int argc, char *argv[]) {
        json_t *o = NULL;
        bool json;
        int k;

        k = parse_args("status", "Ask the running agent what it enforces (over D-Bus). Exit 0 when it\n"
                       "enforces, 1 when it runs but does not, 2 when it cannot be asked.",
                       argc, argv, &json);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        k = get_json("status", "Status", &o);
        if (k != CTL_EXIT_OK)
                return k;
        k = streq(str(o, "state", ""), "enforcing") ? CTL_EXIT_OK : CTL_EXIT_FAIL;
        if (json)
                ctl_json_print(o); /* drops the reference */
        else {
                print_status(o);
                json_decref(o);
        }
        return k;
}

int verb_reload(int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_t *o = NULL;
        bool json;
        int k;

        k = parse_args("reload", "Ask the running agent to reload its configured policy (over D-Bus).\n"
                       "An invalid policy is exit 1 and the agent keeps enforcing the old one.",
                       argc, argv, &json);
        if (k != 0)
                return k > 0 ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        k = call("reload", "Reload", &reply);
        if (k != CTL_EXIT_OK) {
                if (json)
                        ctl_json_print(json_pack("{s:s}", "status", k == CTL_EXIT_FAIL ? "policy-invalid" : "error"));
                return k;
        }
        k = get_json("reload", "Status", &o);
        if (k != CTL_EXIT_OK)
                return k;
        if (json)
                ctl_json_print(json_pack("{s:s, s:s, s:s}", "status", "reloaded", "policy",
                                         str(o, "policy", ""), "policy_sha256", str(o, "policy_sha256", "")));
        else
                printf("reloaded %s (sha256 %.12s)\n", str(o, "policy", "?"), str(o, "policy_sha256", "?"));
        json_decref(o);
        return CTL_EXIT_OK;
}
