#!/usr/bin/env bash
# command-pages.sh VMDKIT OUTDIR VERSION
#
# Write vmdkit.1 and the man page vmdkit-COMMAND.1 of every command listed
# by `VMDKIT --help` into OUTDIR, from the manual built into the program:
# vmdkit.1 from `VMDKIT --help`, each command's page from
# `VMDKIT help COMMAND`.  A command's manual is plain text with man-page
# sections:
#
#   SECTION TITLE             a line in capitals at the left margin
#       text                  paragraphs indented 4 (a blank line separates them)
#       -x, --long ARG        OPTIONS: an option at indent 4 ...
#           description       ... and its description at indent 8
#         item                deeper lines: a tagged list (a line followed by
#             description     deeper lines) or preformatted text
#       TERM   text           a definition list (EXIT STATUS codes, ...):
#              more text      every line a term or text at one column
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: command-pages.sh VMDKIT OUTDIR VERSION" >&2
    exit 2
fi
vmdkit=$1 outdir=$2 version=$3

# (awk reads to the end: stopping early would end a --help longer than a
# pipe write with SIGPIPE, a failure under pipefail)
commands=$("$vmdkit" --help | awk '/^Commands:/ && !done {on = 1; next}
                                    on && /^$/ {on = 0; done = 1}
                                    on && /^  [a-z]/ {print $1}')
if [ -z "$commands" ]; then
    echo "command-pages.sh: no commands found in '$vmdkit --help'" >&2
    exit 1
fi

# ascii_roff: write each non-ASCII character (UTF-8 input) as a groff
# \[uXXXX] escape, so the pages render the same in every locale
ascii_roff() {
    perl -CS -pe 's/([^\x00-\x7f])/sprintf("\\[u%04X]", ord($1))/ge'
}

mkdir -p "$outdir"
rm -f "$outdir"/vmdkit.1 "$outdir"/vmdkit-*.1

# vmdkit.1: the overview, the command list and the tables of `vmdkit --help`
"$vmdkit" --help | awk -v version="$version" '
    function esc(s) {
        gsub(/\\/, "\\e", s)
        gsub(/-/, "\\-", s)
        if (s ~ /^[.\x27]/)
            s = "\\&" s
        return s
    }
    /^Usage:/ { part = "usage"; next }
    /^Commands:/ { part = "commands"; next }
    /^Option accepted/ { part = "common"; chead = $0; sub(/^Option/, "The option", chead); next }
    /^Exit status:/ { part = "exit"; next }
    /^Sizes, offsets/ { part = "sizes" }
    /^Run / { part = ""; next }
    /^$/ { if (part != "sizes") part = ""; next }
    part == "usage" { sub(/^ +/, ""); usage[++nu] = $0 }
    part == "commands" { cmds[++nc] = $1; sub(/^ +[^ ]+ +/, ""); summary[nc] = $0 }
    part == "common" { sub(/^ +/, ""); opt = $1; sub(/^[^ ]+ +/, ""); common[++no] = opt; cdesc[no] = $0 }
    part == "sizes" { sizes = sizes (sizes == "" ? "" : "\n") $0 }
    part == "exit" { sub(/^ +/, ""); code[++ne] = $1; sub(/^[^ ]+ +/, ""); edesc[ne] = $0 }
    END {
        printf ".TH VMDKIT 1 \"\" \"vmdkit %s\" \"vmdkit Manual\"\n.nh\n.ad l\n", version
        print ".SH NAME"
        print "vmdkit \\- read, write and create VMware virtual disks (VMDK)"
        print ".SH SYNOPSIS"
        for (i = 1; i <= nu; i++) {
            if (i > 1) print ".br"
            u = usage[i]; sub(/^vmdkit /, "", u)
            print ".B vmdkit"
            print esc(u)
        }
        print ".SH DESCRIPTION"
        print "vmdkit reads, writes and creates the virtual disks of VMware products:"
        print "monolithicSparse, monolithicFlat, twoGbMaxExtentSparse, twoGbMaxExtentFlat,"
        print "streamOptimized and ESXi vmfs disks, with their chains of snapshot and"
        print "linked\\-clone deltas, and raw images.  It is built on the library"
        print ".BR libvmdkit (3);"
        print ".BR nbdkit\\-vmdkit\\-plugin (1)"
        print "serves the same disks over NBD."
        print ".PP"
        print "Each command has its own manual page,"
        print ".BR vmdkit\\-COMMAND (1),"
        print "also shown by"
        print ".BR \"vmdkit help\" \" COMMAND\"."
        print "Commands with"
        print ".B \\-\\-json"
        print "print objects whose fields are described in the file docs/json.md of the"
        print "source; where a field means what it means in"
        print ".BR \"qemu\\-img info \\-\\-output=json\" ,"
        print "it has the same name."
        print ".SH COMMANDS"
        for (i = 1; i <= nc; i++) {
            print ".TP"
            printf ".BR vmdkit\\-%s (1)\n%s\n", cmds[i], esc(summary[i])
        }
        print ".SH COMMON OPTIONS"
        print esc(chead)
        for (i = 1; i <= no; i++)
            printf ".TP\n.B %s\n%s\n", esc(common[i]), esc(cdesc[i])
        print ".PP"
        n = split(sizes, sl, "\n")
        for (i = 1; i <= n; i++) print esc(sl[i])
        print ".SH EXIT STATUS"
        for (i = 1; i <= ne; i++)
            printf ".TP 3\n.B %s\n%s\n", code[i], esc(edesc[i])
        print ".SH SEE ALSO"
        printf ".BR libvmdkit (3),\n.BR nbdkit\\-vmdkit\\-plugin (1),\n"
        for (i = 1; i <= nc; i++) printf ".BR vmdkit\\-%s (1),\n", cmds[i]
        print ".BR qemu\\-img (1)"
    }' | ascii_roff >"$outdir/vmdkit.1"

for cmd in $commands; do
    "$vmdkit" help "$cmd" | awk -v cmd="$cmd" -v version="$version" -v all="$commands" '
    # roff-escape one line of text
    function esc(s) {
        gsub(/\\/, "\\e", s)
        gsub(/-/, "\\-", s)
        if (s ~ /^[.\x27]/)
            s = "\\&" s
        return s
    }
    function indent_of(s) { match(s, /^ */); return RLENGTH }
    function strip(s) { sub(/^ +/, "", s); return s }
    # A paragraph starting at line I that is a definition list: every line is
    # "TERM  text" with the text at one column, or continues the text at that
    # column.  Returns the column (0 when it is not such a list); sets para_end.
    function deflist(i,    j, c, ind, t) {
        if (!match(line[i], /^    [^ ]+  +[^ ]/))
            return 0
        c = RLENGTH - 1
        for (j = i; j <= n && line[j] !~ /^ *$/ && line[j] !~ /^[A-Z]/; j++) {
            ind = indent_of(line[j])
            if (ind == c)
                continue
            if (ind != 4 || !match(line[j], /^    [^ ]+  +[^ ]/) || RLENGTH - 1 != c)
                return 0
        }
        para_end = j - 1
        return c
    }
    function close_block() {
        if (block == "nf") print ".fi"
        if (block != "") print ".RE"
        block = ""
    }
    { line[++n] = $0 }
    END {
        up = toupper(cmd)
        gsub(/-/, "\\-", up)
        printf ".TH VMDKIT\\-%s 1 \"\" \"vmdkit %s\" \"vmdkit Manual\"\n", up, version
        print ".nh"
        print ".ad l"
        sec = ""; block = ""; para = 0
        for (i = 1; i <= n; i++) {
            s = line[i]
            if (s ~ /^[A-Z][A-Z ]*$/) {
                close_block()
                sec = s; para = 0
                print ".SH " s
                continue
            }
            if (s ~ /^ *$/) { para = 1; continue }
            ind = indent_of(s); t = strip(s)
            next_ind = (i < n && line[i + 1] !~ /^ *$/) ? indent_of(line[i + 1]) : -1
            if (sec == "NAME") {
                sub(/^vmdkit /, "vmdkit-", t)
                print esc(t)
                continue
            }
            if (sec == "SYNOPSIS") {
                rest = substr(t, length("vmdkit " cmd) + 1)
                print ".B vmdkit " esc(cmd)
                if (rest != "") print esc(strip(rest))
                continue
            }
            if (sec == "EXAMPLES") {
                if (block == "") { print ".PP"; print ".RS 4"; print ".nf"; block = "nf" }
                else if (para) print ".sp"
                para = 0
                print esc(t)
                continue
            }
            if (ind > 4 && !(sec == "OPTIONS" && ind == 8)) {
                # deeper text: a tagged list where an item has deeper lines, else preformatted
                if (next_ind > ind && block != "nf") {
                    if (block == "") { print ".RS 2"; block = "tp" }
                    print ".TP 4"
                    print esc(t)
                    para = 0
                    continue
                }
                if (block == "tp" && ind > 4) { print esc(t); para = 0; continue }
                if (block == "") { print ".RS 2"; print ".nf"; block = "nf" }
                print esc(substr(s, 7))
                para = 0
                continue
            }
            close_block()
            if (sec == "OPTIONS" && ind == 4 && t ~ /^-/) {
                print ".TP"
                print ".B " esc(t)
                para = 0
                continue
            }
            if (sec == "OPTIONS" && ind == 8) {
                if (para) print ".IP"
                para = 0
                print esc(t)
                continue
            }
            if (ind == 4 && (c = deflist(i)) > 0) {
                for (; i <= para_end; i++) {
                    t = strip(line[i])
                    if (indent_of(line[i]) == 4) {
                        term = t; sub(/ .*/, "", term)
                        t = substr(line[i], c + 1)
                        printf ".TP %d\n.B %s\n", c - 4, esc(term)
                    }
                    print esc(t)
                }
                i = para_end
                para = 0
                continue
            }
            if (para) print ".PP"
            para = 0
            print esc(t)
        }
        close_block()
        print ".SH SEE ALSO"
        printf ".BR vmdkit (1)"
        m = split(all, names, /[ \n]+/)
        for (k = 1; k <= m; k++)
            if (names[k] != "" && names[k] != cmd)
                printf ",\n.BR vmdkit\\-%s (1)", names[k]
        printf ",\n.BR qemu\\-img (1)\n"
    }' | ascii_roff >"$outdir/vmdkit-$cmd.1"
done
