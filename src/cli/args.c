/*
 * args.c — the one option parser of every ipcf subcommand.
 *
 * Each subcommand describes its command line once (a cli_spec: its options,
 * whether it lists things and so takes --json, whether it takes the shared
 * flow options, how many positional arguments) and cli_parse() applies the
 * same rules everywhere:
 *  - options may come before, between and after the positional arguments
 *    (`ipcf call NAME -t 2000`); "--" ends the options, whatever follows is
 *    positional (`ipcf serve NAME -- sort -r`, `ipcf mbox send box -- -x`);
 *  - an argument that is "-" or starts with "-" and a digit (a negative
 *    number) is positional;
 *  - an unknown option, a missing or bad value, too few or too many
 *    positional arguments are usage errors: one line on stderr, exit 2,
 *    before anything else is done (no daemon is contacted);
 *  - -h/--help prints the usage on stdout, exit 0;
 *  - --json is accepted exactly by the listings (spec->json).
 * Options are handed to the subcommand's callback in command-line order.
 *
 * Built on getopt_long in its "stop at the first non-option" mode, resumed
 * after each positional argument, so that "--" is seen where it stands.
 * The positional arguments are gathered, in order, at argv[1..] (getopt has
 * read those slots already); the strings themselves are never moved.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options one spec may have in all: its own, the flow options, --json, --help. */
#define CLI_OPTIONS_MAX 48

static const cli_option json_option[] = { { "json", CLI_OPT_JSON, false }, { 0 } };
static const cli_option help_option[] = { { "help", 'h', false }, { 0 } };

/* The tables getopt_long wants, made from a spec's option lists. */
typedef struct getopt_tables {
        struct option longopts[CLI_OPTIONS_MAX + 1];
        char shortopts[2 * CLI_OPTIONS_MAX + 3];
        const cli_option *all[CLI_OPTIONS_MAX]; /* by position, to name them in errors */
        size_t n_long, n_all, n_short;
} getopt_tables;

static void tables_add(getopt_tables *t, const cli_option *list) {
        for (const cli_option *o = list; o && o->key; o++) {
                if (t->n_all == CLI_OPTIONS_MAX)
                        abort(); /* a spec with too many options: a bug, caught by every test */
                t->all[t->n_all++] = o;
                if (o->name)
                        t->longopts[t->n_long++] = (struct option){
                                o->name, o->value ? required_argument : no_argument, NULL, o->key
                        };
                if (o->key < 0x80) {
                        t->shortopts[t->n_short++] = (char)o->key;
                        if (o->value)
                                t->shortopts[t->n_short++] = ':';
                }
        }
}

/* "+:": stop at the first positional argument (we resume after it); report
 * a missing value as ':' and print nothing ourselves. */
static void tables_make(getopt_tables *t, const cli_spec *s) {
        memset(t, 0, sizeof(*t));
        t->shortopts[t->n_short++] = '+';
        t->shortopts[t->n_short++] = ':';
        tables_add(t, s->options);
        if (s->flow)
                tables_add(t, cli_flow_options);
        if (s->json)
                tables_add(t, json_option);
        tables_add(t, help_option);
}

/* The option's spelling for an error line: "--count", else "-c". */
static const char *option_word(const getopt_tables *t, int key, char buf[3]) {
        for (size_t i = 0; i < t->n_all; i++)
                if (t->all[i]->key == key && t->all[i]->name) {
                        static char word[64];
                        snprintf(word, sizeof(word), "--%s", t->all[i]->name);
                        return word;
                }
        buf[0] = '-';
        buf[1] = (char)key;
        buf[2] = 0;
        return buf;
}

/* An unknown option, a value missing or one too many: the word as the user
 * typed it. glibc leaves optopt 0 for an unknown long option, the option's
 * key for a long one with a value problem, the letter for a short one; a
 * long option's word is the one getopt just passed. */
static int bad_option(const cli_spec *s, const getopt_tables *t, int opt, char **argv) {
        char word[64] = { '-', (char)optopt, 0 };
        const char *last = optind > 1 ? argv[optind - 1] : "";
        bool is_long = !strncmp(last, "--", 2) && (optopt == 0 || optopt >= 0x80 || opt == ':' ||
                                                   strchr(last, '='));
        if (is_long) /* "--name=value": name the option only */
                snprintf(word, sizeof(word), "%.*s", (int)strcspn(last, "="), last);
        if (opt == ':')
                return cli_usage(s->cmd, "option '%s' needs a value", word);
        if (is_long && optopt != 0)
                return cli_usage(s->cmd, "option '%s' takes no value", word);
        if (is_long) { /* a prefix of two or more: ambiguous, say which */
                char which[256] = "";
                size_t len = strlen(word + 2), used = 0, found = 0;
                for (size_t i = 0; i < t->n_long && used < sizeof(which); i++)
                        if (!strncmp(t->longopts[i].name, word + 2, len) && ++found)
                                used += (size_t)snprintf(which + used, sizeof(which) - used, "%s--%s",
                                                         found > 1 ? ", " : "", t->longopts[i].name);
                if (found > 1)
                        return cli_usage(s->cmd, "ambiguous option '%s' (%s)", word, which);
        }
        return cli_usage(s->cmd, "unknown option '%s'", word);
}

static void print_help(const cli_spec *s) {
        fputs(s->usage, stdout);
        if (s->flow)
                fputs(cli_flow_opts_help, stdout);
}

/* Hand one option to whom it belongs; CLI_PARSED or an exit status. */
static int take_option(const cli_spec *s, const getopt_tables *t, int key, const char *value,
                       cli_option_fn fn, void *ctx, cli_args *ret) {
        if (key == CLI_OPT_JSON) {
                ret->json = true;
                return CLI_PARSED;
        }
        int r;
        if (s->flow && key >= CLI_OPT_STREAM && key < CLI_OPT_JSON)
                r = cli_flow_opt(key, value, s->flow) > 0 ? 0 : -EINVAL;
        else
                r = fn ? fn(ctx, key, value) : -EINVAL;
        if (r == 0)
                return CLI_PARSED;
        if (r > 0)
                return r; /* the callback printed its error */
        char buf[3];
        return cli_usage(s->cmd, "bad value for %s: '%s'", option_word(t, key, buf),
                         value ? value : "");
}

int cli_parse(const cli_spec *s, int argc, char **argv, cli_option_fn fn, void *ctx,
              cli_args *ret) {
        getopt_tables t;
        tables_make(&t, s);
        memset(ret, 0, sizeof(*ret));
        ret->v = argv + 1;
        ret->n_before_dashdash = -1;
        optind = 0; /* 0, not 1: glibc reinitialises its state fully */
        opterr = 0;
        /* Slot argv[1 + n] receives the n-th positional argument: it was
         * read already (every argument takes at least one slot). */
        int n = 0;
        for (;;) {
                int before = optind ? optind : 1;
                if (before < argc && argv[before][0] == '-' && argv[before][1] >= '0' &&
                    argv[before][1] <= '9') {
                        /* A negative number ("-13", an RPC's JSON argument) is
                         * positional: no option is a digit. */
                        argv[1 + n++] = argv[before];
                        optind = before + 1;
                        continue;
                }
                int key = getopt_long(argc, argv, t.shortopts, t.longopts, NULL);
                if (key == '?' || key == ':')
                        return bad_option(s, &t, key, argv);
                if (key == 'h') {
                        print_help(s);
                        return CLI_EXIT_OK;
                }
                if (key != -1) {
                        int r = take_option(s, &t, key, optarg, fn, ctx, ret);
                        if (r != CLI_PARSED)
                                return r;
                        continue;
                }
                if (optind >= argc)
                        break;
                if (optind == before + 1 && !strcmp(argv[before], "--")) {
                        /* The end of the options: the rest is positional. */
                        ret->n_before_dashdash = n;
                        while (optind < argc)
                                argv[1 + n++] = argv[optind++];
                        break;
                }
                argv[1 + n++] = argv[optind++];
        }
        ret->n = n;
        if (n < s->min_args)
                return cli_usage(s->cmd, "%s missing", s->args_name ? s->args_name : "an argument");
        if (s->max_args >= 0 && n > s->max_args)
                return cli_usage(s->cmd, "unexpected argument '%s'", ret->v[s->max_args]);
        if (s->first_is_name && n >= 1 && cli_name_check(s->cmd, ret->v[0]) != 0)
                return CLI_EXIT_USAGE;
        if (s->flow && cli_flow_opts_check(s->cmd, s->flow) != 0)
                return CLI_EXIT_USAGE;
        return CLI_PARSED;
}
