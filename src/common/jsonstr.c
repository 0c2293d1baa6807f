/*
 * jsonstr.c — see jsonstr.h.
 */
#include "common/jsonstr.h"

/* The length of the well-formed UTF-8 sequence of 2..4 bytes at s (n bytes
 * left), or 0 (not UTF-8: a stray byte, a cut, overlong or surrogate). */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
        size_t len = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                   : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
        if (!len || len > n)
                return 0;
        for (size_t i = 1; i < len; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) || /* overlong, surrogates */
            (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
                return 0;
        return len;
}

void json_put_string(FILE *out, const char *s, size_t n) {
        fputc('"', out);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                size_t seq = c >= 0x80 ? utf8_seq_len((const unsigned char *)s + i, n - i) : 0;
                if (seq) {
                        fwrite(s + i, 1, seq, out);
                        i += seq - 1;
                } else if (c == '"' || c == '\\') {
                        fprintf(out, "\\%c", c);
                } else if (c < 0x20 || c >= 0x7f) {
                        fprintf(out, "\\u%04x", c);
                } else {
                        fputc(c, out);
                }
        }
        fputc('"', out);
}
