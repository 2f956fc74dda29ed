// Package hostfs is the one place where ferry changes, moves, reads or
// removes files on a host, usually as root. Every module that touches host
// files builds its command from these shell functions, so none of them acts
// by a path that another user of the host could redirect.
//
// Agentless: the functions are POSIX sh sent at the head of the module's
// one command (one round trip per operation, as before); they need only
// sh, coreutils, find and /proc, and leave nothing installed.
//
// The rules (docs/security.md, "Host files: one primitive"):
//
//   - A path is entered one component at a time from / (hf_in): each
//     directory is lstat'ed, entered with cd -P and checked to be the same
//     inode, so a directory swapped for a symlink is noticed, never
//     followed. Two directories are checked per stat (a process each: most
//     of what a walk costs): the second is entered before the first is
//     checked, but nothing is created, written, or reported missing before
//     every directory entered so far has passed. A symlink on the way is
//     followed only when root owns it and only root can write the
//     directory that holds it (as /lib -> usr/lib);
//     any other is refused, naming the link and its owner. A directory
//     that its group or everyone may write (without the sticky bit) is
//     refused too, as OpenSSH's StrictModes does.
//   - Everything after that is relative to the held directory (the cwd, or
//     /proc/self/fd/N for a directory held open), never by absolute path.
//   - Where a regular file or a directory is expected, its name is lstat'ed
//     and opened, and the open file's inode checked against the name's: its
//     mode and owner are then set through the open file (/proc/self/fd/3).
//   - New files and links are made in a private directory (0700, root's)
//     next to their destination, get mode and owner there, then are
//     renamed over the destination relative to the held directory.
//   - hf_trusted judges a path whose content chooses what root runs (a
//     compose project): it and every directory on its way must be
//     writable only by root, the user ferry acts as, or $hf_tuid (the
//     user who connected, when set), as OpenSSH's StrictModes.
//   - Archives are unpacked in a private directory with no owner and no
//     permission taken from the archive, setuid/setgid bits dropped, and
//     names with a newline refused; entries are installed one by one
//     relative to held directories.
package hostfs

import (
	"path"
	"strings"

	"github.com/ferrydeploy/ferry/internal/shell"
)

// Lib defines the hf_* shell functions. Script puts it in front of a body.
//
// Conventions: hf_die prints "ferry: ..." on stderr and exits 2. Functions
// use and set hf_* variables only; fd 8 holds the directory a private
// directory was made in, fd 7 a source tree, fd 5 a base directory, fd 4
// and fd 9 the directories being walked from, fd 3 an opened file (fd 6 is
// left to modules: deploy_helper holds its base there).
const Lib = `hf_die() { printf 'ferry: %s\n' "$*" >&2; exit 2; }
hf_who() { stat -c %U -- "$1" 2>/dev/null || echo unknown; }
hf_dmode=
hf_safe() { set -- $(stat -c '%u %a' .); [ "$1" = 0 ] && { [ $(( 0$2 & 022 )) = 0 ] || [ $(( 0$2 & 01000 )) != 0 ]; }; }
hf_strict() { [ $(( 0$2 & 01000 )) != 0 ] && return 0; [ $(( 0$2 & 02 )) = 0 ] && { [ "$1" = 0 ] || [ $(( 0$2 & 020 )) = 0 ]; }; }
hf_sf='%d:%i %g %a %u %d'
hf_moved() { hf_die "$1 changed while ferry entered it (swapped for a symlink?): check who can write to $2"; }
hf_walk() {
  hf_r=$1 hf_cr=$2 hf_n=0 hf_pq=
  while [ -n "$hf_r" ]; do
    hf_c=${hf_r%%/*}; case $hf_r in */*) hf_r=${hf_r#*/};; *) hf_r=;; esac
    case $hf_c in ''|.) continue;; ..) hf_die "$hf_w: '..' is not allowed in a path";; esac
    hf_p=${hf_at%/}/$hf_c
    if [ -L "$hf_c" ]; then
      hf_flush
      if ! hf_safe || [ "$(stat -c %u -- "$hf_c")" != 0 ]; then
        hf_die "$hf_p is a symlink owned by $(hf_who "$hf_c") in $hf_at (owned by $(hf_who .), mode $(stat -c %a .)): ferry does not follow, as root, a link another user could have placed; use the real path or make it a directory"
      fi
      hf_n=$((hf_n+1)); [ $hf_n -le 40 ] || hf_die "$hf_w: too many levels of symlinks"
      hf_t=$(cd -P -- "$hf_c" 2>/dev/null && pwd -P) || hf_die "$hf_p is a symlink to a missing directory"
      hf_r=$hf_t/$hf_r; cd / || exit 1; hf_at=/ hf_tok=1 hf_trust=/; continue
    fi
    if [ ! -e "$hf_c" ]; then
      hf_flush
      case $hf_cr in 1) ;; 2) return 1;; *) hf_die "$hf_p does not exist";; esac
      mkdir -m 700 -- "$hf_c" || hf_die "cannot create $hf_p"
      exec 4< . && cd -P -- "$hf_c" && set -- $(stat -c "$hf_sf" "/proc/self/fd/4/$hf_c" .) && [ $# = 10 ] && [ "$1" = "$6" ] ||
        hf_moved "$hf_p" "$hf_at"
      [ -n "$hf_dmode" ] || hf_dmode=$(printf '%o' $(( 0777 & ~0$(umask) ))); chmod "$hf_dmode" . || exit 1; hf_made="$hf_made$hf_p
"
      hf_step "$hf_p" "$hf_at" . "$1" "$6" "$7" "$hf_dmode" "$9" "${10}"; hf_at=$hf_p; continue
    fi
    [ -d "$hf_c" ] || { hf_flush; hf_die "$hf_p is not a directory"; }
    if [ -z "$hf_pq" ]; then
      exec 4< . && cd -P -- "$hf_c" || hf_moved "$hf_p" "$hf_at"
      hf_pq=$hf_c hf_pqp=$hf_p hf_pqat=$hf_at
    else
      exec 9< . && cd -P -- "$hf_c" && set -- $(stat -c "$hf_sf" "/proc/self/fd/4/$hf_pq" /proc/self/fd/9/. "/proc/self/fd/9/$hf_c" .) && [ $# = 20 ] ||
        hf_moved "$hf_pqp or $hf_p" "$hf_pqat"
      hf_pq=; hf_step "$hf_pqp" "$hf_pqat" /proc/self/fd/9/. "$1" "$6" "$7" "$8" "$9" "${10}"
      hf_step "$hf_p" "$hf_pqp" . "${11}" "${16}" "${17}" "${18}" "${19}" "${20}"
    fi
    hf_at=$hf_p
  done
  hf_flush
}
hf_flush() {
  [ -n "$hf_pq" ] || return 0
  set -- $(stat -c "$hf_sf" "/proc/self/fd/4/$hf_pq" .); hf_pq=
  [ $# = 10 ] || hf_moved "$hf_pqp" "$hf_pqat"
  hf_step "$hf_pqp" "$hf_pqat" . "$1" "$6" "$7" "$8" "$9" "${10}"
}
hf_step() {
  [ "$4" = "$5" ] || hf_moved "$1" "$2"
  if [ "$hf_tok" = 1 ] && { [ "$8" = 0 ] || [ "$8" = "$hf_uid" ] || [ "$8" = "$hf_tuid" ]; } && { [ $(( 0$7 & 022 )) = 0 ] || [ $(( 0$7 & 01000 )) != 0 ]; }; then hf_trust=$1 hf_tdev=$9; else hf_tok=0; fi
  hf_strict "$6" "$7" || hf_die "$1 is writable by its group or by everyone (owner $(hf_who "$3"), mode $7): ferry does not act as root below it; make it writable by its owner only"
}
hf_in() {
  hf_w=$1; case $1 in /*) ;; *) hf_w=$(pwd -P)/$1;; esac
  [ -n "$hf_uid" ] || hf_myuid
  [ -n "$hf_rdev" ] || hf_rdev=$(stat -c %d /)
  cd / || exit 1; hf_at=/ hf_tok=1 hf_trust=/ hf_tdev=$hf_rdev; hf_walk "$hf_w" "$2"
}
hf_myuid() {
  while read -r hf_uk hf_ur hf_ue hf_ux; do [ "$hf_uk" = Uid: ] && hf_uid=$hf_ue && return 0; done </proc/self/status
  hf_uid=$(id -u)
}
hf_trusted() {
  hf_at_file "$1" 2 follow || return 1
  [ "$hf_tok" = 1 ] || hf_die "$1: a directory on its way below $hf_trust can be written by a user other than root (${hf_at} is owned by $(hf_who .), mode $(stat -c %a .)): ferry does not run, as root, what another user may choose; make its directories writable by root only"
  hf_type "$hf_b"; case $hf_ty in n) return 1;; f|d) ;; *) hf_die "$1 is not a regular file or a directory";; esac
  set -- "$1" $(stat -c '%u %a' -- "$hf_b")
  { [ "$2" = 0 ] || [ "$2" = "$hf_uid" ] || [ "$2" = "$hf_tuid" ]; } && [ $(( 0$3 & 022 )) = 0 ] ||
    hf_die "$1 can be written by a user other than root (owner $(hf_who "$hf_b"), mode $3): ferry does not run, as root, what another user may choose; make it owned by root and writable by its owner only"
}
hf_type() { if [ -L "$1" ]; then hf_ty=l; elif [ -d "$1" ]; then hf_ty=d; elif [ -f "$1" ]; then hf_ty=f; elif [ -e "$1" ]; then hf_ty=o; else hf_ty=n; fi; }
hf_open() {
  exec 3<&-; hf_type "$1"; case $hf_ty in f|d) ;; *) return 1;; esac
  exec 3< "./$1" || hf_die "cannot open ${hf_at%/}/$1"
  [ ! -L "$1" ] && [ "$(stat -c %d:%i -- "$1")" = "$(stat -L -c %d:%i /proc/self/fd/3)" ] ||
    hf_die "${hf_at%/}/$1 changed while ferry opened it (swapped for a symlink?): check who can write to $hf_at"
}
hf_at_file() {
  hf_q=$1 hf_k=0
  while :; do
    case $hf_q in */*) hf_in "${hf_q%/*}/" "$2" || return 1;; *) hf_in . "$2" || return 1;; esac
    hf_b=${hf_q##*/}; [ -n "$hf_b" ] && [ "$hf_b" != . ] && [ "$hf_b" != .. ] || hf_die "$1 does not name a file"
    [ -L "$hf_b" ] && [ "$3" = follow ] || return 0
    hf_safe && [ "$(stat -c %u -- "$hf_b")" = 0 ] ||
      hf_die "${hf_at%/}/$hf_b is a symlink owned by $(hf_who "$hf_b") in $hf_at (owned by $(hf_who .), mode $(stat -c %a .)): ferry does not follow, as root, a link another user could have placed; use the real path"
    hf_k=$((hf_k+1)); [ $hf_k -le 40 ] || hf_die "$1: too many levels of symlinks"
    hf_q=$(readlink -- "$hf_b") || exit 1; case $hf_q in /*) ;; *) hf_q=${hf_at%/}/$hf_q;; esac
  done
}
hf_read() {
  hf_type "$1"
  case $hf_ty in
    n) printf N; return 0;;
    l) hf_die "${hf_at%/}/$1 is a symlink owned by $(hf_who "$1"): ferry does not read through it as root; use the real path";;
    d) hf_die "${hf_at%/}/$1 is a directory, not a file";;
    o) hf_die "${hf_at%/}/$1 is not a regular file";;
  esac
  hf_open "$1" || hf_die "${hf_at%/}/$1 changed while ferry read it"
  if [ "$(stat -L -c %h /proc/self/fd/3)" != 1 ] && ! hf_safe; then
    hf_die "${hf_at%/}/$1 has other hard links, in a directory $(hf_who .) can write: ferry does not read it as root"
  fi
  printf E; cat <&3
}
hf_say() { [ -n "$hf_quiet" ] || printf '%s\n' "$*"; }
hf_attr() {
  [ -n "$2$3$4" ] || return 0
  hf_o=$(stat -L -c '%a:%U:%u:%G:%g' "$1") || exit 1
  hf_m=${hf_o%%:*}; hf_o=${hf_o#*:}; hf_ou=${hf_o%%:*}; hf_o=${hf_o#*:}; hf_ou="$hf_ou ${hf_o%%:*}"; hf_o=${hf_o#*:}; hf_og="${hf_o%%:*} ${hf_o#*:}"
  if [ -n "$2" ]; then
    [ "$hf_m" = "$2" ] || { hf_say "mode $hf_m -> $2"; [ "$hf_check" = 1 ] || chmod -- "$2" "$1" || exit 1; }
  fi
  if [ -n "$3" ]; then
    case " $hf_ou " in *" $3 "*) ;; *) hf_say "owner ${hf_ou%% *} -> $3"; [ "$hf_check" = 1 ] || chown -- "$3" "$1" || exit 1;; esac
  fi
  if [ -n "$4" ]; then
    case " $hf_og " in *" $4 "*) ;; *) hf_say "group ${hf_og%% *} -> $4"; [ "$hf_check" = 1 ] || chgrp -- "$4" "$1" || exit 1;; esac
  fi
}
hf_attr_tree() {
  [ -z "$1" ] || [ -z "$(find . ! -perm "$1" -print -quit)" ] || { hf_say "mode $1 (recursive)"; [ "$hf_check" = 1 ] || chmod -R -- "$1" . || exit 1; }
  [ -z "$2" ] || [ -z "$(find . ! -user "$2" -print -quit)" ] || { hf_say "owner $2 (recursive)"; [ "$hf_check" = 1 ] || chown -R -- "$2" . || exit 1; }
  [ -z "$3" ] || [ -z "$(find . ! -group "$3" -print -quit)" ] || { hf_say "group $3 (recursive)"; [ "$hf_check" = 1 ] || chgrp -R -- "$3" . || exit 1; }
}
hf_lattr() {
  if [ -n "$2" ]; then hf_o=$(stat -c '%U %u' -- "$1") || exit 1
    case " $hf_o " in *" $2 "*) ;; *) hf_say "owner ${hf_o%% *} -> $2"; [ "$hf_check" = 1 ] || chown -h -- "$2" "./$1" || exit 1;; esac; fi
  if [ -n "$3" ]; then hf_o=$(stat -c '%G %g' -- "$1") || exit 1
    case " $hf_o " in *" $3 "*) ;; *) hf_say "group ${hf_o%% *} -> $3"; [ "$hf_check" = 1 ] || chgrp -h -- "$3" "./$1" || exit 1;; esac; fi
}
hf_mkdirs() {
  exec 5< . || exit 1; hf_base=$hf_at hf_last=.
  for hf_f do
    hf_d=${hf_f%/*}; [ "$hf_d" = "$hf_f" ] && hf_d=.
    if [ "$hf_d" != "$hf_last" ]; then cd -P /proc/self/fd/5 || exit 1; hf_at=$hf_base hf_w=$hf_base/$hf_f; hf_walk "$hf_d" 1; fi
    hf_w=$hf_base/$hf_f; hf_walk "${hf_f##*/}" 1; hf_last=$hf_f
  done
  cd -P /proc/self/fd/5 && hf_at=$hf_base
}
hf_sweep() { ( hf_in "$1" 2 && find . -mindepth 1 -maxdepth 1 -name "$2" -mmin +"$3" -exec rm -rf -- {} + ) 2>/dev/null; }
hf_enterstage() {
  hf_in "$1" 2 && exec 8< . && hf_in "$2" 2 && [ "$(stat -c %u:%a .)" = "$hf_uid:700" ] ||
    { printf 'copy: the temp directory %s is gone or not private any more; check who else can write to %s\n' "$2" "$1" >&2; exit 1; }
}
hf_backup() { { ln -f -- "/proc/self/fd/8/$1" "/proc/self/fd/8/$2" 2>/dev/null || cp -P -p -- "/proc/self/fd/8/$1" "/proc/self/fd/8/$2"; } || exit 1; }
hf_rmtrees() { for hf_f do ( hf_at_file "$hf_f" 2 && hf_rmtree "$hf_b" ) 2>/dev/null; done; true; }
hf_hash() { hf_s=$(openssl dgst -sha256 -r < "$1" 2>/dev/null) && hf_s=${hf_s%% *} && [ ${#hf_s} = 64 ] || { hf_s=$(sha256sum < "$1") || return 1; hf_s=${hf_s%% *}; }; }
hf_stage() {
  if [ "$hf_tdev" = "$(stat -c %d .)" ] && hf_pn=$(mktemp -d "${hf_trust%/}/$1XXXXXX" 2>/dev/null); then :
  else hf_pn=$(mktemp -d "./$1XXXXXX") && hf_pn=$(pwd -P)/${hf_pn#./} || exit 1; fi
  printf '\001PRIV\0%s\0' "$hf_pn"
}
hf_needpriv() {
  hf_n=1
  if [ -f "./$1" ] && [ ! -L "./$1" ]; then
    [ -n "$hf_s1" ] && hf_s=$hf_s1 || hf_hash "./$1"
    if [ "$hf_s" = "$2" ]; then
      hf_n=0; set -- "$@" "$(stat -c '%a %U %u %G %g' -- "./$1")"
      [ -z "$3" ] || [ "${8%% *}" = "$3" ] || hf_n=1
      [ -z "$4" ] || case " $(echo "$8" | cut -d' ' -f2-3) " in *" $4 "*) ;; *) hf_n=1;; esac
      [ -z "$5" ] || case " $(echo "$8" | cut -d' ' -f4-5) " in *" $5 "*) ;; *) hf_n=1;; esac
    elif [ "$6" = 0 ]; then hf_n=0; fi
  elif [ -d "./$1" ] && [ ! -L "./$1" ]; then hf_n=0; fi
  [ $hf_n = 1 ] || return 0
  hf_stage "$7"
}
hf_private() {
  exec 8< . || exit 1
  hf_pd=$(mktemp -d "./.$1.ferry-tmp-XXXXXX") || hf_die "cannot make a temp directory in $hf_at"
  hf_pd=${hf_pd#./}; trap 'hf_clean' EXIT
  [ -n "$hf_uid" ] || hf_myuid
  cd -P -- "$hf_pd" && set -- $(stat -c '%d:%i %u:%a' . "/proc/self/fd/8/$hf_pd") && [ "$1" = "$3" ] && [ "$2" = "$hf_uid:700" ] ||
    hf_die "the temp directory ${hf_at%/}/$hf_pd is not private any more: check who can write to $hf_at"
}
hf_clean() { [ -z "$hf_pd" ] || rm -rf -- "/proc/self/fd/8/$hf_pd"; hf_pd=; }
hf_place() {
  if [ -d "/proc/self/fd/8/$2" ] && [ ! -L "/proc/self/fd/8/$2" ]; then hf_die "${hf_at%/}/$2 is a directory: remove it or choose another path"; fi
  mv -fT -- "$1" "/proc/self/fd/8/$2" || exit 1
}
hf_link() { ln -s -- "$1" ./l || exit 1; hf_place ./l "$2"; }
hf_rmtree() { case $1 in ''|.|..|*/*) hf_die "cannot remove '$1'";; esac; rm -rf -- "./$1" || exit 1; }
hf_setnew() {
  [ -z "$3" ] || chown -h -- "$3" "$1" || exit 1
  [ -z "$2" ] || [ -L "$1" ] || chmod -- "$2" "$1" || exit 1
}
hf_unpack() {
  hf_a=$1 hf_ow=$2; shift 2
  mkdir -m 700 x && cd -P x || exit 1
  hf_bad='^/|^\.\.(/|$)|/\.\.(/|$)'
  if [ "$(head -c 2 /proc/self/fd/3)" = PK ]; then
    command -v unzip >/dev/null 2>&1 || hf_die "$hf_a is a zip archive and the host has no unzip: install it, or ship a tar"
    ! unzip -Z1 /proc/self/fd/3 2>/dev/null | grep -Eq "$hf_bad" || hf_die "$hf_a has an entry with an absolute name or '..': refused"
    unzip -q -o "$@" /proc/self/fd/3 -d . || hf_die "unzip $hf_a failed"
  else
    ! tar -tf /proc/self/fd/3 2>/dev/null | grep -Eq "$hf_bad" || hf_die "$hf_a has an entry with an absolute name or '..': refused"
    tar -xf /proc/self/fd/3 "$@" --no-same-owner --no-same-permissions || hf_die "tar -xf $hf_a failed (is it an archive?)"
  fi
  [ -z "$(find . -name '*
*' -print -quit)" ] || hf_die "$hf_a has an entry with a newline in its name: refused"
  chmod -R u-s,g-s . || exit 1
  chown -R -h -- "${hf_ow:-$(id -u):$(id -g)}" . || exit 1
  exec 7< . || exit 1
  find . -mindepth 1 -print | sed 's|^\./||' > ../list || exit 1
}
hf_sync() {
  hf_changed=0 hf_last=
  while IFS= read -r hf_f; do
    hf_s=/proc/self/fd/7/$hf_f; hf_d=${hf_f%/*}; [ "$hf_d" = "$hf_f" ] && hf_d=.
    if [ "$hf_d" != "$hf_last" ]; then
      cd -P /proc/self/fd/8 || exit 1; hf_at=$hf_dest hf_w=$hf_dest/$hf_f hf_last=
      if [ "$hf_d" != . ]; then hf_walk "$hf_d" "$1" || { hf_say "CH $hf_f"; hf_changed=1; continue; }; fi
      hf_last=$hf_d
    fi
    hf_b=${hf_f##*/}; hf_type "$hf_b"; hf_same=0 hf_fmt=%a
    [ -z "$2" ] || hf_fmt=%a:%u:%g
    if [ -L "$hf_s" ]; then
      [ $hf_ty = l ] && [ "$(readlink -- "$hf_s")" = "$(readlink -- "$hf_b")" ] && hf_same=1
    elif [ -d "$hf_s" ]; then
      [ $hf_ty = d ] && [ "$(stat -c $hf_fmt -- "$hf_s")" = "$(stat -c $hf_fmt -- "$hf_b")" ] && hf_same=1
    else
      [ $hf_ty = f ] && hf_open "$hf_b" && cmp -s -- "$hf_s" /proc/self/fd/3 && [ "$(stat -c $hf_fmt -- "$hf_s")" = "$(stat -L -c $hf_fmt /proc/self/fd/3)" ] && hf_same=1
    fi
    [ $hf_same = 1 ] && continue
    hf_changed=1; hf_say "CH $hf_f"; [ "$1" = 1 ] || continue
    if [ -d "$hf_s" ] && [ ! -L "$hf_s" ]; then
      case $hf_ty in d|n) ;; *) hf_rmtree "$hf_b";; esac
      hf_w=$hf_dest/$hf_f; hf_walk "$hf_b" 1; chmod --reference="$hf_s" . || exit 1
      [ -z "$2" ] || chown --reference="$hf_s" . || exit 1
      hf_last=$hf_f
    else
      [ $hf_ty = d ] && hf_die "${hf_at%/}/$hf_b is a directory where the archive has a file: remove it first"
      mv -fT -- "$hf_s" "./$hf_b" || exit 1
    fi
  done
}
`

// Script is Lib followed by the body of a module's command.
func Script(body ...string) string {
	return Lib + strings.Join(body, "")
}

// RemoveTrees is a command that removes each path (a file, or a directory
// and everything in it), best effort, relative to its physically entered
// parent: a symlink on the way or in its place is never followed.
func RemoveTrees(paths ...string) string {
	return Script("hf_rmtrees " + shell.Join(paths...))
}

// Stage is a command that makes a private directory (0700) named
// prefix+random for files to be renamed into dir, and prints "\x01PRIV\x00"
// and its path: in the deepest directory above dir that only root (or the
// user ferry acts as) can write, all the way from /, when it is on dir's
// filesystem and writable (then paths into it cannot be redirected, not
// even by SFTP), else in dir itself.
func Stage(dir, prefix string) string {
	return Script("hf_in " + shell.Quote(dir) + " 0; hf_stage " + shell.Quote(prefix))
}

// Q quotes a word for the shell.
func Q(s string) string { return shell.Quote(s) }

// Split returns the directory and the last name of a path on the host, as
// the hf_* functions take them ("" dir for a bare name).
func Split(p string) (dir, name string) {
	p = strings.TrimRight(p, "/")
	if p == "" {
		return "/", ""
	}
	d, n := path.Split(p)
	if d == "" {
		d = "."
	}
	return d, n
}
