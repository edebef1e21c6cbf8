# Runs zsh completion for each line given, in an interactive zsh on a pseudo-terminal (zsh/zpty), and
# appends to $1, per line: ">>> line", every match offered (one per line, as compadd received it), "<<<".
# Used by test/completion.test.ts; run from the repository root.
zmodload zsh/zpty
out=$1; shift
: > $out
zpty -b z zsh -f -i
zpty -w z "PS1='> '; fpath=($PWD/completion \$fpath); autoload -Uz compinit; compinit -u -D; compdef _kmodts modprobe kmod"
zpty -w z "compadd() { local -a __m; builtin compadd -O __m \"\$@\"; print -rl -- \$__m >> $out; builtin compadd \"\$@\"; }"
zpty -w z "test-complete() { zle complete-word; print -r -- '<<<' >> $out; }; zle -N test-complete; bindkey '^T' test-complete"
n=0
for line in "$@"; do
  zpty -w z "print -r -- '>>> $line' >> $out"
  zpty -n -w z "$line"$'\C-t'
  (( n++ ))
  for i in {1..200}; do (( $(grep -c '^<<<$' $out) >= n )) && break; sleep 0.05; done
  zpty -w z $'\C-u'
done
zpty -d z
