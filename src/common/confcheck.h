/*
 * confcheck.h — what the config parser (conf.c) checks beyond the syntax of
 * one line: a key given twice, the valid key or section nearest to a
 * misspelt one, a [name] section that can never apply. Pure functions over
 * conf.c's input (fuzzed with it by fuzz/fuzz-conf.c); every loop is bounded
 * by the tables below or by CONF_RULES_MAX.
 *
 * The table of keys is the one list of every key of every section: conf.c
 * and confhosts.c accept exactly these (a key added to a parser goes here
 * too, or it is never checked for duplicates nor suggested) (tests/test-conf-check.c parses each
 * one), and the manual documents each, and no other (tests/test-man.c).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct conf;

/* One key of one section. section is the header's first word: "daemon",
 * "limits", "name", "hosts", "host", "impair", "directory". example is a
 * valid value. */
typedef struct conf_key {
        const char *section;
        const char *key;
        const char *example;
} conf_key;

extern const conf_key conf_keys[];
extern const size_t conf_n_keys;

/* The sections, as a header writes them ("name PATTERN"), for messages. */
extern const char *const conf_sections[];
extern const size_t conf_n_sections;

/* Is key (n bytes) a key of section? */
bool conf_key_known(const char *section, const char *key, size_t n);

/* The keys met in one section — for [daemon] and [limits], in all sections of
 * that name, since a key there is one setting however the file is cut up. */
#define CONF_SEEN_MAX 16 /* more than any section has keys */
#define CONF_KEY_NAME_MAX 31
typedef struct conf_seen {
        size_t n;
        struct {
                char key[CONF_KEY_NAME_MAX + 1];
                unsigned line;
        } k[CONF_SEEN_MAX];
} conf_seen;

/* Note a known key of the section at line. Returns 0, or the line where it
 * was first given (> 0) if it was. */
unsigned conf_seen_add(conf_seen *s, const char *key, size_t n, unsigned line);

/* "unknown key in [S]: 'K' (did you mean 'X'?)", or "(want a, b or c)" when
 * no valid key is near, into buf. */
void conf_explain_unknown_key(char *buf, size_t size, const char *section, const char *key, size_t n);

/* "unknown section [S] (did you mean [X]?)", or the list of sections. */
void conf_explain_unknown_section(char *buf, size_t size, const char *in, size_t n);

/* Can the last [name] rule of c ever apply? If an earlier rule matches every
 * name it matches (the same pattern; "*"; a literal name matched by an
 * earlier "PREFIX*" or by a pattern literal but for '?'), explain why not
 * into buf and return false. Time linear in the patterns per earlier rule. */
bool conf_rule_can_apply(const struct conf *c, char *buf, size_t size);
