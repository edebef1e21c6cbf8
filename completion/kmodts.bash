# bash completion for kmodts and its tools (modprobe, insmod, rmmod, lsmod, modinfo, depmod, kmod, check, dmesg).
#
# Install: source this file from ~/.bashrc, or copy it to
# /usr/share/bash-completion/completions/kmodts. If kmodts is installed under the tools' names (links named
# modprobe, modinfo, kmod, ...), add for each: complete -F _kmodts modprobe
#
# Module names come from the modules.dep of the kernel the command line selects (-d/-b root, -S/-k version,
# `uname -r` otherwise); loaded modules (rmmod, modprobe -r) from /proc/modules, or from the simulated
# kernel's lsmod with --backend=sim. Works without the bash-completion package.

_kmodts_tools='modprobe insmod rmmod lsmod modinfo depmod kmod check dmesg'

# options of each tool: long options (with = when they take an argument), then short ones
_kmodts_opts_modprobe='--all --remove --remove-holders --remove-dependencies --wait= --first-time --ignore-install --ignore-remove --use-blacklist --force --force-modversion --force-vermagic --resolve-alias --show-depends --showconfig --show-config --show-modversions --dump-modversions --show-exports --dry-run --show --config= --dirname= --set-version= --syslog --quiet --verbose --version --help -a -r -w -i -b -f -R -D -c -n -C -d -S -s -q -v -V -h'
_kmodts_opts_insmod='--force --syslog --verbose --version --help -f -s -v -V -h'
_kmodts_opts_rmmod='--force --syslog --verbose --version --help -f -s -v -V -h'
_kmodts_opts_lsmod='--syslog --verbose --version --help -s -v -V -h'
_kmodts_opts_modinfo='--author --description --license --parameters --filename --null --modname --field= --set-version= --basedir= --version --help -a -d -l -p -n -0 -m -F -k -b -V -h'
_kmodts_opts_depmod='--all --quick --basedir= --moduledir= --outdir= --config= --symvers= --filesyms= --errsyms --show --dry-run --symbol-prefix= --verbose --warn --version --help -a -A -b -m -o -C -E -F -e -n -P -v -w -V -h'
_kmodts_opts_check='--dirname= --set-version= --symvers= --config= --all --quiet --color= --colour= --json --help -d -S -E -C -a -q -h'
# kmod's own options (before its command), its commands, and the options of its static-nodes command
_kmodts_opts_kmod='--version --help -V -h'
_kmodts_kmod_commands='help list static-nodes'
_kmodts_opts_static_nodes='--format= --output= --help -f -o -h'
_kmodts_opts_dmesg='--raw --notime --read-clear --clear --json --help -r -t -c -C -h'
_kmodts_settings='--backend= --sim-state= --json --help --version'

# The words of the line up to the cursor, split on blanks (bash's COMP_WORDS also splits at = and :).
_kmodts_words() {
  local line=${COMP_LINE:0:COMP_POINT}
  read -ra _kmodts_w <<<"$line"
  [[ $line =~ [[:space:]]$ || ${#_kmodts_w[@]} -eq 0 ]] && _kmodts_w+=("")
}

# Sets COMPREPLY from candidate words matching the current word, trimmed for bash's own = and : split.
_kmodts_reply() {
  local cur=$1
  shift
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$*" -- "$cur"))
  if [[ $cur == *[=:]* ]]; then
    local pre=${cur%"${cur##*[=:]}"} i
    for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]=${COMPREPLY[i]#"$pre"}; done
  fi
}

# Module names in modules.dep of root $1, version $2.
_kmodts_modnames() {
  local dep="$1/lib/modules/$2/modules.dep" line name
  [[ -r $dep ]] || return
  while IFS= read -r line; do
    name=${line%%:*}
    name=${name##*/}
    name=${name%%.*}
    printf '%s\n' "${name//-/_}"
  done <"$dep"
}

# Loaded modules: the simulated kernel's with --backend=sim, else /proc/modules.
_kmodts_loaded() {
  if [[ $_kmodts_backend == sim ]]; then
    local -a cmd=(kmodts --backend=sim)
    [[ -n $_kmodts_simstate ]] && cmd+=("--sim-state=$_kmodts_simstate")
    "${cmd[@]}" lsmod 2>/dev/null | while IFS=$' \t' read -r name _; do [[ $name != Module ]] && printf '%s\n' "$name"; done
  elif [[ -r /proc/modules ]]; then
    while IFS=$' \t' read -r name _; do printf '%s\n' "$name"; done </proc/modules
  fi
}

# Kernel versions present under root $1.
_kmodts_versions() {
  local d
  for d in "$1"/lib/modules/*/; do
    [[ -d $d ]] && d=${d%/} && printf '%s\n' "${d##*/}"
  done
}

_kmodts() {
  local -a _kmodts_w
  _kmodts_words
  local -a w=("${_kmodts_w[@]}")
  local n=${#w[@]}
  local cur=${w[n - 1]} i=1 tool=${w[0]##*/}
  _kmodts_backend=${KMODTS_BACKEND:-native}
  _kmodts_simstate=${KMODTS_SIM_STATE:-}
  COMPREPLY=()

  if [[ " $_kmodts_tools " != *" $tool "* ]]; then
    # kmodts [settings] tool ...
    tool=
    while ((i < n - 1)); do
      case ${w[i]} in
      --backend=*) _kmodts_backend=${w[i]#*=} ;;
      --sim-state=*) _kmodts_simstate=${w[i]#*=} ;;
      --backend) ((i++)); _kmodts_backend=${w[i]} ;;
      --sim-state) ((i++)); _kmodts_simstate=${w[i]} ;;
      -*) ;;
      *) tool=${w[i]}; ((i++)); break ;;
      esac
      ((i++))
    done
    if [[ -z $tool ]]; then
      case $cur in
      --backend=*) _kmodts_reply "$cur" --backend=native --backend=sim ;;
      --sim-state=*)
        local IFS=$'\n'
        COMPREPLY=($(compgen -d -- "${cur#*=}"))
        ;;
      -*) _kmodts_reply "$cur" $_kmodts_settings; [[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null ;;
      *) _kmodts_reply "$cur" $_kmodts_tools help ;;
      esac
      return 0
    fi
  fi
  # kmodts help TOOL
  if [[ $tool == help ]]; then
    ((i == n - 1)) && _kmodts_reply "$cur" $_kmodts_tools
    return 0
  fi

  # kmod [options] command [command options]: list is lsmod, static-nodes has its own options
  if [[ $tool == kmod ]]; then
    while ((i < n - 1)) && [[ ${w[i]} == -* ]]; do ((i++)); done
    if ((i == n - 1)); then
      if [[ $cur == -* ]]; then _kmodts_reply "$cur" $_kmodts_opts_kmod; else _kmodts_reply "$cur" $_kmodts_kmod_commands; fi
      return 0
    fi
    case ${w[i]} in
    list) tool=lsmod ;;
    static-nodes) tool=static_nodes ;;
    *) return 0 ;;
    esac
    ((i++))
  fi

  # the tool's own arguments: w[i .. n-2] are complete words, cur is the one being completed
  local root= ver= remove= prev= arg_of= j
  for ((j = i; j < n - 1; j++)); do
    case $tool:${w[j]} in
    modprobe:-d | modprobe:--dirname | check:-d | check:--dirname | modinfo:-b | modinfo:--basedir | depmod:-b | depmod:--basedir) root=${w[j + 1]} ;;
    modprobe:--dirname=* | check:--dirname=* | modinfo:--basedir=* | depmod:--basedir=*) root=${w[j]#*=} ;;
    modprobe:-d?* | check:-d?* | modinfo:-b?* | depmod:-b?*) root=${w[j]:2} ;;
    modprobe:-S | modprobe:--set-version | check:-S | check:--set-version | modinfo:-k | modinfo:--set-version) ver=${w[j + 1]} ;;
    modprobe:--set-version=* | check:--set-version=* | modinfo:--set-version=*) ver=${w[j]#*=} ;;
    modprobe:-S?* | check:-S?* | modinfo:-k?*) ver=${w[j]:2} ;;
    modprobe:--remove) remove=1 ;;
    esac
    # -r alone or in a cluster of options that take no argument (-ar, -rv)
    [[ $tool == modprobe && ${w[j]} =~ ^-[abcDfinqRsv]*r[abcDfinqRsv]*$ ]] && remove=1
  done
  ((n >= 2)) && prev=${w[n - 2]}
  # an option whose argument is being completed
  case $tool:$prev in
  static_nodes:-o | static_nodes:--output) arg_of=file ;;
  static_nodes:-f | static_nodes:--format) arg_of=format ;;
  *:-C | *:--config | check:-E | check:--symvers | depmod:-E | depmod:--symvers | depmod:-F | depmod:--filesyms) arg_of=file ;;
  modprobe:-d | modprobe:--dirname | check:-d | check:--dirname | modinfo:-b | modinfo:--basedir | depmod:-b | depmod:--basedir | depmod:-o | depmod:--outdir | depmod:-m | depmod:--moduledir) arg_of=dir ;;
  modprobe:-S | modprobe:--set-version | check:-S | check:--set-version | modinfo:-k | modinfo:--set-version) arg_of=version ;;
  modinfo:-F | modinfo:--field) arg_of=field ;;
  check:--color | check:--colour) arg_of=color ;;
  modprobe:-w | modprobe:--wait | depmod:-P | depmod:--symbol-prefix) arg_of=none ;;
  esac
  case $tool:$cur in
  static_nodes:--output=*) arg_of=file; cur=${cur#*=} ;;
  static_nodes:--format=*) arg_of=format; cur=${cur#*=} ;;
  *:--config=* | check:--symvers=* | depmod:--symvers=* | depmod:--filesyms=*) arg_of=file; cur=${cur#*=} ;;
  *:--dirname=* | *:--basedir=* | depmod:--outdir=* | depmod:--moduledir=*) arg_of=dir; cur=${cur#*=} ;;
  *:--set-version=*) arg_of=version; cur=${cur#*=} ;;
  modinfo:--field=*) arg_of=field; cur=${cur#*=} ;;
  check:--color=* | check:--colour=*) arg_of=color; cur=${cur#*=} ;;
  esac
  local IFS=$'\n'
  case $arg_of in
  file) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return 0 ;;
  dir) COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null; return 0 ;;
  version) _kmodts_reply "$cur" $(_kmodts_versions "$root"); return 0 ;;
  field) _kmodts_reply "$cur" alias author depends description filename firmware import_ns intree license name parm parmtype retpoline sig_hashalgo sig_id sig_key signature signer softdep srcversion vermagic version; return 0 ;;
  color) _kmodts_reply "$cur" auto always never; return 0 ;;
  format) _kmodts_reply "$cur" human tmpfiles devname; return 0 ;;
  none) return 0 ;;
  esac
  unset IFS

  if [[ $cur == -* ]]; then
    local var=_kmodts_opts_$tool
    _kmodts_reply "$cur" ${!var}
    [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
    return 0
  fi
  [[ -z $ver ]] && ver=$(uname -r)
  IFS=$'\n'
  case $tool in
  modprobe)
    if [[ -n $remove ]]; then
      _kmodts_reply "$cur" $(_kmodts_loaded)
    else
      _kmodts_reply "$cur" $(_kmodts_modnames "$root" "$ver")
    fi
    ;;
  rmmod) _kmodts_reply "$cur" $(_kmodts_loaded) ;;
  insmod)
    # the module file comes first; the words after it are module parameters
    for ((j = i; j < n - 1; j++)); do [[ ${w[j]} != -* ]] && return 0; done
    COMPREPLY=($(compgen -f -X '!*.ko*' -- "$cur") $(compgen -d -- "$cur"))
    compopt -o filenames 2>/dev/null
    ;;
  modinfo | check)
    _kmodts_reply "$cur" $(_kmodts_modnames "$root" "$ver")
    if [[ $cur == */* || $cur == .* ]]; then
      COMPREPLY+=($(compgen -f -X '!*.ko*' -- "$cur") $(compgen -d -- "$cur"))
      compopt -o filenames 2>/dev/null
    fi
    ;;
  depmod) _kmodts_reply "$cur" $(_kmodts_versions "$root") ;;
  esac
  return 0
}

complete -F _kmodts kmodts
