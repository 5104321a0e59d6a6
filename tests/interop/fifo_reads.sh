#!/usr/bin/env bash
# fifo_reads.sh - the small text files vmdkit reads whole (.vmx, .vmsd, an
# OVF package) never wait on a FIFO: they are refused at once with a
# one-line error naming the file (security review M4).
. "${VMDKIT_TESTLIB:-$(dirname "$0")/lib.sh}"
need_vmdkit
need timeout mkfifo
mk_tmpdir

# refused CODE DESC CMD...: CMD exits with CODE within 5 s, one line on stderr
refused() {
    local want=$1 desc=$2
    shift 2
    run timeout 5 "$@"
    if [ "$RC" -eq 124 ]; then
        fail "$desc: still waiting after 5 s"
        return
    fi
    assert_eq "$desc: exit $want, without waiting" "$want" "$RC"
    assert_eq "$desc: one line on stderr" 1 "$(wc -l <"$ERR")"
}

mkfifo f.vmx
refused 4 "vmx get on a FIFO" "$VMDKIT" vmx get f.vmx displayName
assert_true "the message says what the file is" grep -q 'f.vmx: not a regular file' "$ERR"
refused 4 "vmx set on a FIFO" "$VMDKIT" vmx set f.vmx displayName x
assert_true "the FIFO is still a FIFO" [ -p f.vmx ]

mkdir VM.vmwarevm
printf '.encoding = "UTF-8"\ndisplayName = "VM"\nscsi0:0.present = "TRUE"\nscsi0:0.fileName = "VM.vmdk"\n' \
    >VM.vmwarevm/VM.vmx
check "create the VM's disk" "$VMDKIT" create VM.vmwarevm/VM.vmdk 1M
mkfifo VM.vmwarevm/VM.vmsd
refused 4 "snapshot list with a FIFO as the .vmsd" "$VMDKIT" snapshot list VM.vmwarevm
assert_true "the message names the .vmsd" grep -q 'VM.vmsd: not a regular file' "$ERR"

mkfifo p.ova
run timeout 5 "$VMDKIT" ova check p.ova
assert_true "ova check on a FIFO does not wait" [ "$RC" -ne 124 ] && [ "$RC" -ne 0 ]

finish
