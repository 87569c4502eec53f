// Package config fills a flag.FlagSet from three sources, so every setting
// of every component can be given the same three ways. In increasing
// precedence:
//
//  1. a YAML file (named by the config-file flag), whose keys are the flag
//     names; nested maps join with dots, so `broker: {max-message-bytes: 10}`
//     sets the flag broker.max-message-bytes;
//  2. MAGNETAR_* environment variables: the flag name upper-cased with '.'
//     and '-' turned into '_' (broker.max-message-bytes is
//     MAGNETAR_BROKER_MAX_MESSAGE_BYTES);
//  3. command-line flags.
//
// Components register their flags (with defaults and help text) through
// their own RegisterFlags methods; this package only decides where values
// come from.
package config
