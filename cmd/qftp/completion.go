package main

import (
	"fmt"
	"strings"
)

// shellCommands are the commands a one-shot qftp call takes after the host.
var shellCommands = []string{"cd", "df", "get", "hash", "help", "lcd", "lls", "lpwd", "ls", "mget", "mkdir", "mput", "mv", "put", "pwd", "rm", "rmdir"}

// clientFlags are qftp's flags, for completion scripts.
var clientFlags = []string{"--accept-new-host", "--batch", "--config", "--connect-timeout", "--connections", "--fingerprint", "--help", "--jobs", "--max-connections",
	"--debug", "--known-hosts", "--limit-rate", "--no-progress", "--password-file", "--retries", "--retry-time", "--version"}

const bashCompletion = `# bash completion for qftp; load with: source <(qftp completion bash)
_qftp() {
	local cur=${COMP_WORDS[COMP_CWORD]} i host=0
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--known-hosts|--fingerprint|--password-file|--connect-timeout|--retries|--retry-time|--jobs|-j|--limit-rate|--batch|-b|--config|--connections|--max-connections) ((i++)) ;;
		-*) ;;
		*) host=$i; break ;;
		esac
	done
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "%[1]s" -- "$cur"))
	elif ((host == 0)); then
		COMPREPLY=($(compgen -A hostname -- "$cur"))
	elif ((COMP_CWORD == host + 1)); then
		COMPREPLY=($(compgen -W "%[2]s" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o default -F _qftp qftp
`

const zshCompletion = `#compdef qftp
# zsh completion for qftp; load with: source <(qftp completion zsh)
_qftp() {
	local -a flags cmds
	flags=(%[1]s)
	cmds=(%[2]s)
	if [[ $words[CURRENT] == -* ]]; then
		compadd -a flags
	elif (( CURRENT == 2 )) || [[ $words[CURRENT-1] == -* ]]; then
		_hosts
	elif [[ ${words[(I)*@*]} -eq $((CURRENT-1)) ]] || (( CURRENT == 3 )); then
		compadd -a cmds
	else
		_files
	fi
}
compdef _qftp qftp
`

const fishCompletion = `# fish completion for qftp; load with: qftp completion fish | source
complete -c qftp -f
%[1]s
complete -c qftp -n '__fish_is_nth_token 2' -a '%[2]s'
complete -c qftp -n 'not __fish_is_nth_token 1; and not __fish_is_nth_token 2' -F
`

// printCompletion prints the completion script for a shell.
func printCompletion(s stdio, args []string) int {
	shell := ""
	if len(args) == 1 {
		shell = args[0]
	}
	flags, cmds := strings.Join(clientFlags, " "), strings.Join(shellCommands, " ")
	switch shell {
	case "bash":
		fmt.Fprintf(s.out, bashCompletion, flags, cmds)
	case "zsh":
		fmt.Fprintf(s.out, zshCompletion, flags, cmds)
	case "fish":
		var b strings.Builder
		for _, f := range clientFlags {
			fmt.Fprintf(&b, "complete -c qftp -l %s\n", strings.TrimPrefix(f, "--"))
		}
		fmt.Fprintf(s.out, fishCompletion, strings.TrimSuffix(b.String(), "\n"), cmds)
	default:
		fmt.Fprintln(s.err, "usage: qftp completion bash|zsh|fish")
		return exitUsage
	}
	return exitOK
}
