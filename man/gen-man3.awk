# gen-man3.awk — the section 3 manual of libipcf, made from include/ipcf.h at
# build time so that it can never drift from the header:
#
#   awk -v out=DIR -v version=X.Y -f man/gen-man3.awk include/ipcf.h
#
# writes DIR/libipcf.3 (the header's opening comment, then each section of
# the header with its introduction, its functions and its types) and one page
# DIR/ipcf_NAME.3 per IPCF_API function (its declaration, the comment before
# it, the definitions of the ipcf types it names, its section's other
# functions).
#
# WHAT IT RELIES ON in the header (ipcf.h follows it; a declaration it cannot
# read is an error, exit 1):
#  - a section is a banner: a "/* ---- */" line, "/* Title */", "/* ---- */";
#  - a function's documentation is the comment block right before it (no
#    blank line between); consecutive IPCF_API lines share one comment;
#  - each IPCF_API declaration names its function on its first line;
#  - a comment that "ipcf_NAME — does this" starts gives NAME's summary;
#  - typedefs and enums are copied verbatim with the comment before them.
# In comment text a blank line starts a paragraph, "- " a bullet, and a line
# indented four columns more than its paragraph is shown as written.
#
# Portable awk (Debian's mawk): no gawk extensions.

function esc(s) {
        gsub(/\\/, "\\e", s)
        gsub(/—/, "\\(em", s)
        if (s ~ /^[.']/)
                s = "\\&" s
        return s
}

# The text of a comment line: without " * ", "/*", "*/".
function comment_text(line) {
        sub(/^[ \t]*\/\*+ ?/, "", line)
        sub(/[ \t]*\*+\/[ \t]*$/, "", line)
        sub(/^[ \t]*\* ?/, "", line)
        return line
}

# Is this comment line laid out by hand (a column of a table, code)?
function laid_out(t) {
        return t ~ /[^ ]  +[^ ]/
}

# Comment text (lines joined by "\n") as roff. A paragraph (between blank
# lines) is filled, unless its first line is indented four columns or more
# past the comment's margin or laid out by hand: then it is shown as
# written. Inside a filled paragraph a line indented four more than the
# paragraph (or its bullet's text) is shown as written; "- " starts a bullet;
# a line in capitals ("CONVENTIONS (...)") is a heading.
function render(text,    n, lines, i, line, ind, margin, base, verb, para, out, t) {
        n = split(text, lines, "\n")
        margin = -1
        for (i = 1; i <= n; i++)
                if (lines[i] !~ /^[ \t]*$/) {
                        match(lines[i], /^ */)
                        if (margin < 0 || RLENGTH < margin)
                                margin = RLENGTH
                }
        out = ""
        base = -1
        verb = 0
        para = ""
        for (i = 1; i <= n; i++) {
                line = lines[i]
                if (line ~ /^[ \t]*$/) {
                        if (verb) { out = out ".fi\n"; verb = 0 }
                        out = out ".PP\n"
                        base = -1
                        para = ""
                        continue
                }
                match(line, /^ */)
                ind = RLENGTH
                t = substr(line, ind + 1)
                if (para == "") {
                        para = ind >= margin + 4 || laid_out(t) ? "verbatim" : "fill"
                        if (para == "verbatim") { out = out ".nf\n"; verb = 1 }
                }
                if (para == "verbatim") {
                        out = out esc(substr(line, margin + 1)) "\n"
                        continue
                }
                if (base < 0)
                        base = ind
                if (ind >= base + 4 || laid_out(t)) {
                        if (!verb) { out = out ".nf\n"; verb = 1 }
                        out = out esc(substr(line, base + 1)) "\n"
                        continue
                }
                if (verb) { out = out ".fi\n"; verb = 0 }
                if (t ~ /^- /) {
                        out = out ".IP \\(bu 2\n" esc(substr(t, 3)) "\n"
                        base = ind + 2
                        continue
                }
                if (t ~ /^[A-Z][A-Z]+( [A-Z]+)*( \(.*\))?$/) {
                        out = out ".SS \"" quote(t) "\"\n"
                        base = -1
                        para = ""
                        continue
                }
                out = out esc(t) "\n"
        }
        if (verb)
                out = out ".fi\n"
        return out
}

# A macro argument in double quotes: its own quotes as \(dq.
function quote(s) {
        s = esc(s)
        gsub(/"/, "\\(dq", s)
        return s
}

function verbatim(text,    n, lines, i, out) {
        n = split(text, lines, "\n")
        out = ".nf\n"
        for (i = 1; i <= n; i++)
                if (lines[i] != "" || i < n)
                        out = out esc(lines[i]) "\n"
        return out ".fi\n"
}

# The first sentence (or clause) of s, on one line: up to the first "." or
# ";" that ends a word outside parentheses; one longer than 100 characters
# is cut further, at its first ":" outside parentheses past its 30th
# character ("a descriptor for poll ...: readable when ..." says "a
# descriptor for poll ...").
function first_sentence(s,    i, ch, depth, colon, n) {
        gsub(/\n/, " ", s)
        gsub(/  +/, " ", s)
        n = length(s)
        depth = 0
        colon = 0
        for (i = 1; i <= n; i++) {
                ch = substr(s, i, 1)
                if (ch == "(")
                        depth++
                else if (ch == ")" && depth > 0)
                        depth--
                else if (depth == 0 && ch == ":" && !colon && i > 30)
                        colon = i
                else if (depth == 0 && (ch == "." || ch == ";") && (i == n || substr(s, i + 1, 1) == " "))
                        break
        }
        s = substr(s, 1, i - 1)
        if (length(s) > 100 && colon > 1 && colon < i)
                s = substr(s, 1, colon - 1)
        return s
}

# The summary of fn in comment c: the first sentence of what follows
# "fn — " (or "fn (since X.Y) — ").
function summary(fn, c,    s, p) {
        gsub(/\n/, " ", c)
        p = index(c, fn " — ")
        if (p)
                return first_sentence(substr(c, p + length(fn " — ")))
        if (match(c, fn " \\(since [0-9.]+\\) — "))
                return first_sentence(substr(c, RSTART + RLENGTH))
        return ""
}

# A type (or constant) begins on this line: its text starts with the comment
# before it, if any.
function type_start(    c) {
        c = ""
        if (comment_done && comment != "") {
                c = comment
                gsub(/\n/, "\n * ", c)
                c = c ~ /\n/ ? "/*\n * " c "\n */\n" : "/* " c " */\n"
        }
        type_text = c $0
        flush_comment()
        last_api = 0
}

function type_end(name) {
        types[name] = type_text
        type_sec[name] = n_sec
        type_order[++n_types] = name
}

# The one-line summary of function name, for NAME and the overview's list.
function fn_summary(name,    g, c, s, gf) {
        g = fn_group[name]
        c = group_comment[g]
        s = summary(name, c)
        if (s == "") {
                split(group_fns[g], gf, " ")
                if (gf[1] != name && (s = summary(gf[1], c)) != "")
                        s = "with " gf[1] ": " s
        }
        if (s == "" && c != "")
                s = first_sentence(c)
        return s != "" ? s : "see the header"
}

function n_types0(    i, n) {
        n = 0
        for (i = 1; i <= n_types; i++)
                if (type_sec[type_order[i]] == 0)
                        n++
        return n
}

function flush_comment() {
        comment = ""
        comment_done = 0
}

BEGIN {
        if (out == "") { print "gen-man3: -v out=DIR is required" > "/dev/stderr"; exit 1 }
        section = ""; n_sec = 0; n_fn = 0; n_types = 0
        in_comment = 0; comment = ""; comment_done = 0
        top = ""; top_done = 0
        group = 0; last_api = 0
        in_type = 0; in_decl = 0
}

# A section banner: the title line between two rule lines.
/^\/\* -+ \*\/$/ { banner = !banner; next }
banner && /^\/\* .* \*\/$/ {
        t = $0
        sub(/^\/\* +/, "", t); sub(/ +\*\/$/, "", t)
        section = t
        sec_title[++n_sec] = t
        flush_comment()
        next
}

in_decl {
        decl = decl "\n" $0
        if ($0 ~ /;/) { in_decl = 0; end_decl() }
        next
}

in_type {
        type_text = type_text "\n" $0
        if ($0 ~ /^}[^;]*;/) {
                in_type = 0
                name = $0
                sub(/^} */, "", name); sub(/;.*/, "", name)
                type_end(name != "" ? name : type_enum)
        }
        next
}

in_comment {
        if ($0 ~ /\*\//) {
                in_comment = 0
                t = comment_text($0)
                if (t != "")
                        comment = comment (comment == "" ? "" : "\n") t
                comment_done = 1
                if (!top_done) { top = comment; top_done = 1; flush_comment() }
        } else {
                comment = comment (comment == "" ? "" : "\n") comment_text($0)
        }
        next
}

/^\/\*/ {
        # A new comment: the one before it, unused, was a section's introduction.
        if (comment_done && comment != "" && n_sec)
                sec_intro[n_sec] = sec_intro[n_sec] (sec_intro[n_sec] == "" ? "" : "\n\n") comment
        flush_comment()
        if ($0 ~ /\*\//) {
                comment = comment_text($0)
                comment_done = 1
        } else {
                in_comment = 1
                t = comment_text($0)
                comment = t
        }
        last_api = 0
        next
}

/^IPCF_API/ {
        if (!last_api) {
                group++
                group_comment[group] = comment_done ? comment : ""
                group_sec[group] = n_sec
        }
        decl = $0
        if (decl ~ /;/) end_decl(); else in_decl = 1
        next
}

/^(typedef )?(struct|enum) [a-z_]* *\{/ {
        type_enum = $0
        sub(/^(typedef )?(struct|enum) /, "", type_enum); sub(/ *\{.*/, "", type_enum)
        if (type_enum == "")
                type_enum = "anonymous enum, line " NR
        type_start()
        if ($0 ~ /};/)
                type_end(type_enum)
        else
                in_type = 1
        next
}

# Constants are shown with the types of their section.
/^#define IPCF_[A-Z_]+ / {
        name = $2
        if (name != "IPCF_API") {
                type_start()
                type_end(name)
        }
        next
}

/^[ \t]*$/ {
        if (comment_done && comment != "" && n_sec && !last_api)
                sec_intro[n_sec] = sec_intro[n_sec] (sec_intro[n_sec] == "" ? "" : "\n\n") comment
        flush_comment()
        last_api = 0
        next
}

{ flush_comment(); last_api = 0 }

function end_decl(    name, d) {
        d = decl
        gsub(/\n/, " ", d)
        if (!match(d, /ipcf_[a-z0-9_]+\(/)) {
                printf "gen-man3: cannot read the declaration: %s\n", decl > "/dev/stderr"
                failed = 1
                exit 1
        }
        name = substr(d, RSTART, RLENGTH - 1)
        sub(/^IPCF_API /, "", decl)
        gsub(/\n[ \t]+/, "\n        ", decl)
        fn[++n_fn] = name
        fn_decl[name] = decl
        fn_group[name] = group
        group_decls[group] = group_decls[group] (group_decls[group] == "" ? "" : "\n") decl
        group_fns[group] = group_fns[group] " " name
        sec_fns[n_sec] = sec_fns[n_sec] " " name
        last_api = 1
}

# The ipcf types a declaration text names (by their typedef names), each once.
function types_named(text,    out, t, seen, rest) {
        out = ""
        rest = text
        while (match(rest, /ipcf_[a-z0-9_]+/)) {
                t = substr(rest, RSTART, RLENGTH)
                rest = substr(rest, RSTART + RLENGTH)
                if (t in types && !(t in seen)) {
                        seen[t] = 1
                        out = out " " t
                }
        }
        return out
}

function page_head(name, title) {
        return ".\\\" Generated from include/ipcf.h by man/gen-man3.awk: edit the header, not this.\n" \
               ".TH " toupper(name) " 3 \"\" \"ipcf " version "\" \"" title "\"\n"
}

function see_also(list, self,    n, a, i, out, first) {
        n = split(list, a, " ")
        out = ".BR libipcf (3)"
        for (i = 1; i <= n; i++)
                if (a[i] != "" && a[i] != self)
                        out = out ",\n.BR " a[i] " (3)"
        return out "\n"
}

END {
        if (failed)
                exit 1
        if (n_fn == 0) { print "gen-man3: no IPCF_API declarations found" > "/dev/stderr"; exit 1 }
        for (i = 1; i <= n_fn; i++) {
                name = fn[i]
                g = fn_group[name]
                c = group_comment[g]
                s = fn_summary(name)
                f = out "/" name ".3"
                printf "%s", page_head(name, "ipcf library") > f
                printf ".SH NAME\n%s \\- %s\n", name, esc(s) > f
                printf ".SH SYNOPSIS\n.nf\n.B #include <ipcf.h>\n.PP\n%s.fi\n", \
                        substr(verbatim(group_decls[g]), 5) > f
                printf ".PP\nLink with \\fIpkg-config --libs ipcf\\fR (\\fB\\-lipcf\\fR).\n" > f
                d = c != "" ? render(c) : "Not described in ipcf.h.\n"
                printf ".SH DESCRIPTION\n%s", d > f
                tn = types_named(group_decls[g])
                if (tn != "") {
                        printf ".SH TYPES\n" > f
                        k = split(tn, ta, " ")
                        for (j = 1; j <= k; j++)
                                if (ta[j] != "")
                                        printf ".PP\n%s", verbatim(types[ta[j]]) > f
                }
                printf ".SH SEE ALSO\n%s", see_also(sec_fns[group_sec[g]], name) > f
                close(f)
        }
        f = out "/libipcf.3"
        printf "%s", page_head("libipcf", "ipcf library") > f
        printf ".SH NAME\nlibipcf \\- the interprocess communication facility library\n" > f
        printf ".SH SYNOPSIS\n.nf\n.B #include <ipcf.h>\n.PP\n.B cc prog.c $(pkg-config --cflags --libs ipcf)\n.fi\n" > f
        printf ".SH DESCRIPTION\n%s", render(top) > f
        sec_title[0] = "Version and limits" # what comes before the first banner
        for (k = 0; k <= n_sec; k++) {
                if (k == 0 && sec_fns[0] == "" && !n_types0())
                        continue
                printf ".SH \"%s\"\n", quote(toupper(sec_title[k])) > f
                if (sec_intro[k] != "")
                        printf "%s", render(sec_intro[k]) > f
                n = split(sec_fns[k], a, " ")
                for (i = 1; i <= n; i++) {
                        if (a[i] == "")
                                continue
                        printf ".TP\n.BR %s (3)\n%s\n", a[i], esc(fn_summary(a[i])) > f
                }
                for (i = 1; i <= n_types; i++)
                        if (type_sec[type_order[i]] == k)
                                printf ".PP\n%s", verbatim(types[type_order[i]]) > f
        }
        printf ".SH SEE ALSO\n.BR ipcf (1),\n.BR ipcfd (8),\n.BR ipcfd.conf (5)\n" > f
        close(f)
}
