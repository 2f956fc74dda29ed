package awsapi

import (
	"context"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// LookupEnv reads one variable of an environment (os.LookupEnv's shape).
type LookupEnv func(key string) (string, bool)

// get is the value of k in env, "" when unset.
func (env LookupEnv) get(k string) string {
	v, _ := env(k)
	return v
}

// first is the first of keys env sets to something other than "".
func (env LookupEnv) first(keys ...string) string {
	for _, k := range keys {
		if v := env.get(k); v != "" {
			return v
		}
	}
	return ""
}

// envOptions turns the AWS SDK's own variables that say where and as whom
// to call (profile, shared files, region, static keys, endpoints, IMDS
// off) into
// load options, so that they come from the command's environment rather
// than the process's: ferry's tests give each command its own (they run
// in parallel in one process). The SDK's precedence is kept: a profile
// given in Config beats keys in the environment, keys beat AWS_PROFILE,
// an option beats the environment. Variables not named here (web
// identity, container credentials, retries, ...) the SDK still reads
// from the process, which is the command's environment for the binary.
func envOptions(cfg Config, env LookupEnv) []func(*config.LoadOptions) error {
	var opts []func(*config.LoadOptions) error
	if f := env.get("AWS_CONFIG_FILE"); f != "" {
		opts = append(opts, config.WithSharedConfigFiles([]string{f}))
	}
	if f := env.get("AWS_SHARED_CREDENTIALS_FILE"); f != "" {
		opts = append(opts, config.WithSharedCredentialsFiles([]string{f}))
	}
	if cfg.Region == "" {
		if r := env.first("AWS_REGION", "AWS_DEFAULT_REGION"); r != "" {
			opts = append(opts, config.WithRegion(r))
		}
	}
	keys := aws.Credentials{
		AccessKeyID:     env.first("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"),
		SecretAccessKey: env.first("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"),
		SessionToken:    env.get("AWS_SESSION_TOKEN"),
		AccountID:       env.get("AWS_ACCOUNT_ID"),
		Source:          config.CredentialsSourceName,
	}
	useKeys := cfg.Credentials == nil && cfg.Profile == "" && keys.HasKeys()
	if useKeys {
		opts = append(opts, config.WithCredentialsProvider(credentials.StaticCredentialsProvider{Value: keys}))
	}
	// As the SDK: AWS_PROFILE names the profile for what keys do not give
	// (region, endpoints); for credentials it counts only without keys
	// and without a web identity token, which come first.
	if p := env.first("AWS_PROFILE", "AWS_DEFAULT_PROFILE"); cfg.Profile == "" && p != "" &&
		(useKeys || cfg.Credentials != nil || env.get("AWS_WEB_IDENTITY_TOKEN_FILE") == "") {
		opts = append(opts, config.WithSharedConfigProfile(p))
	}
	if strings.EqualFold(env.get("AWS_EC2_METADATA_DISABLED"), "true") {
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	if ignore := strings.EqualFold(env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true"); cfg.EndpointURL == "" && !ignore {
		if u := env.get("AWS_ENDPOINT_URL"); u != "" {
			opts = append(opts, config.WithBaseEndpoint(u))
		}
	}
	return opts
}

// envEndpoints gives the SDK's clients AWS_ENDPOINT_URL_<SERVICE> from an
// environment: it goes first in aws.Config.ConfigSources, where each
// client looks for its service's endpoint.
type envEndpoints struct{ env LookupEnv }

// GetServiceBaseEndpoint is the SDK's hook (see EnvConfig's method of
// that name): sdkID "Elastic Load Balancing v2" reads
// AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2.
func (e envEndpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	if strings.EqualFold(e.env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return "", false, nil
	}
	v := e.env.get("AWS_ENDPOINT_URL_" + strings.ReplaceAll(strings.ToUpper(sdkID), " ", "_"))
	return v, v != "", nil
}

// envOf is cfg's environment, the process's when it names none.
func envOf(cfg Config) LookupEnv {
	if cfg.Env != nil {
		return cfg.Env
	}
	return os.LookupEnv
}
