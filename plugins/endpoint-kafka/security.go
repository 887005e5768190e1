package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/aws/aws-msk-iam-sasl-signer-go/signer"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/xdg-go/scram"
)

// kafkaVersion is the protocol level sarama speaks: recent enough for record
// headers, and accepted by Kafka 4.x brokers, which dropped old versions.
var kafkaVersion = sarama.V3_6_0_0

// newSaramaConfig returns the client configuration shared by producers and
// consumers: connection limits that make an unreachable cluster or a bad
// password fail within seconds, and the security settings.
func newSaramaConfig(cfg *Config, id string) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	sc.ClientID = id
	sc.Version = kafkaVersion
	sc.Net.DialTimeout = 5 * time.Second
	sc.Net.ReadTimeout = 15 * time.Second
	sc.Net.WriteTimeout = 15 * time.Second
	sc.Metadata.Retry.Max = 2
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	sc.Metadata.Full = false
	if err := applySecurity(sc, cfg); err != nil {
		return nil, asConfigError(err)
	}
	if err := sc.Validate(); err != nil {
		return nil, asConfigError(err)
	}
	return sc, nil
}

// applySecurity sets TLS and SASL from the security block (docs/behaviour.md 4).
func applySecurity(sc *sarama.Config, cfg *Config) error {
	proto := cfg.Security.Protocol
	if isTLS(proto) {
		tc, err := tlsConfig(cfg.Security.SSL)
		if err != nil {
			return err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if !isSASL(proto) {
		return nil
	}
	s, err := saslSettings(cfg)
	if err != nil {
		return err
	}
	sc.Net.SASL.Enable = true
	sc.Net.SASL.Handshake = true
	sc.Net.SASL.Version = sarama.SASLHandshakeV1
	switch cfg.Security.SASL.Mechanism {
	case "PLAIN":
		sc.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		sc.Net.SASL.User, sc.Net.SASL.Password = s.option("username"), s.option("password")
	case "SCRAM-SHA-256":
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
		sc.Net.SASL.User, sc.Net.SASL.Password = s.option("username"), s.option("password")
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA256} }
	case "SCRAM-SHA-512":
		sc.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
		sc.Net.SASL.User, sc.Net.SASL.Password = s.option("username"), s.option("password")
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: scram.SHA512} }
	case "OAUTHBEARER":
		sc.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		sc.Net.SASL.TokenProvider = staticToken(s.option("access_token"))
	case "AWS_MSK_IAM":
		region, err := mskRegion(cfg.BootstrapServers)
		if err != nil {
			return err
		}
		sc.Net.SASL.Mechanism = sarama.SASLTypeOAuth
		sc.Net.SASL.TokenProvider = mskTokenProviderFor(region, s)
	case "GSSAPI":
		sc.Net.SASL.Mechanism = sarama.SASLTypeGSSAPI
		sc.Net.SASL.GSSAPI = gssapiConfig(s)
	default:
		return fmt.Errorf("unsupported SASL mechanism %q", cfg.Security.SASL.Mechanism)
	}
	return nil
}

// saslSettings parses the JAAS string and checks that it carries what the
// mechanism needs.
func saslSettings(cfg *Config) (*jaasEntry, error) {
	mech := normalizeEnum(cfg.Security.SASL.Mechanism, mechanisms)
	raw := strings.TrimSpace(cfg.Security.SASL.JAASConfig)
	if raw == "" {
		switch mech {
		case "AWS_MSK_IAM":
			// The default credential chain needs no option.
			return &jaasEntry{Module: "software.amazon.msk.auth.iam.IAMLoginModule", Flag: "required", Options: map[string]string{}}, nil
		case "GSSAPI", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER":
			return nil, fmt.Errorf("security.sasl.jaas_config is required for mechanism %s", mech)
		}
	}
	j, err := parseJAAS(raw)
	if err != nil {
		return nil, err
	}
	need := func(opts ...string) error {
		var missing []string
		for _, o := range opts {
			if _, ok := j.Options[o]; !ok {
				missing = append(missing, o)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("the JAAS configuration of mechanism %s needs option(s) %s", mech, strings.Join(missing, ", "))
		}
		return nil
	}
	switch mech {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		err = need("username", "password")
	case "OAUTHBEARER":
		err = need("access_token")
	case "GSSAPI":
		if strings.EqualFold(j.option("useTicketCache"), "true") {
			break
		}
		err = need("keyTab", "principal")
	case "AWS_MSK_IAM":
		if (j.option("awsRoleAccessKeyId") == "") != (j.option("awsRoleSecretAccessKey") == "") {
			err = errors.New("awsRoleAccessKeyId and awsRoleSecretAccessKey go together")
		}
	}
	if err != nil {
		return nil, err
	}
	return j, nil
}

// scramClient adapts xdg-go/scram to sarama's SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

// Begin starts a SCRAM conversation for the user.
func (c *scramClient) Begin(user, password, authzID string) error {
	cl, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return err
	}
	c.conv = cl.NewConversation()
	return nil
}

// Step answers one server challenge.
func (c *scramClient) Step(challenge string) (string, error) { return c.conv.Step(challenge) }

// Done reports whether the conversation is complete.
func (c *scramClient) Done() bool { return c.conv.Done() }

// staticToken is the OAUTHBEARER token provider of the reference's login
// callback handler: the token is the JAAS option access_token, usually set
// per request with EL (a new token means a new configuration, hence a new
// producer).
type staticToken string

// Token returns the configured token.
func (t staticToken) Token() (*sarama.AccessToken, error) {
	return &sarama.AccessToken{Token: string(t)}, nil
}

// mskHost extracts the region from MSK broker names, e.g.
// b-1.demo.abc123.c2.kafka.eu-west-1.amazonaws.com.
var mskHost = regexp.MustCompile(`\.kafka(?:-serverless)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

// mskRegion finds the AWS region from the bootstrap host names, as the Java
// aws-msk-iam-auth library does, falling back to AWS_REGION.
func mskRegion(bootstrap string) (string, error) {
	for _, a := range strings.Split(bootstrap, ",") {
		host, _, err := net.SplitHostPort(strings.TrimSpace(a))
		if err != nil {
			host = strings.TrimSpace(a)
		}
		if m := mskHost.FindStringSubmatch(strings.ToLower(host)); m != nil {
			return m[1], nil
		}
	}
	for _, env := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if r := os.Getenv(env); r != "" {
			return r, nil
		}
	}
	return "", errors.New("AWS_MSK_IAM: cannot tell the AWS region from the bootstrap servers; set AWS_REGION")
}

// mskTokens caches MSK IAM token providers by region and JAAS options, so
// every client of one configuration reuses a token until it nears expiry.
var mskTokens sync.Map

// mskTokenProviderFor returns the shared token provider for region and JAAS.
func mskTokenProviderFor(region string, j *jaasEntry) sarama.AccessTokenProvider {
	key := region + "\x00" + fmt.Sprint(j.Options)
	if p, ok := mskTokens.Load(key); ok {
		return p.(*mskTokenProvider)
	}
	p, _ := mskTokens.LoadOrStore(key, &mskTokenProvider{region: region, gen: mskGenerator(region, j)})
	return p.(*mskTokenProvider)
}

// mskGenerator chooses how credentials are found, after the JAAS forms of
// aws-msk-iam-auth (docs/behaviour.md 4): the default chain, a named profile, a role
// to assume, optionally with the static keys to assume it with.
func mskGenerator(region string, j *jaasEntry) func(context.Context) (string, int64, error) {
	profile := j.option("awsProfileName")
	role := j.option("awsRoleArn")
	session := j.option("awsRoleSessionName")
	if session == "" {
		session = "sluice-msk-iam"
	}
	keyID, secret := j.option("awsRoleAccessKeyId"), j.option("awsRoleSecretAccessKey")
	stsRegion := j.option("awsStsRegion")
	if stsRegion == "" {
		stsRegion = region
	}
	switch {
	case keyID != "":
		var prov aws.CredentialsProvider = credentials.NewStaticCredentialsProvider(keyID, secret, j.option("awsRoleSessionToken"))
		if role != "" {
			client := sts.New(sts.Options{Region: stsRegion, Credentials: prov})
			prov = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(client, role, func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = session
				if ext := j.option("awsRoleExternalId"); ext != "" {
					o.ExternalID = aws.String(ext)
				}
			}))
		}
		return func(ctx context.Context) (string, int64, error) {
			return signer.GenerateAuthTokenFromCredentialsProvider(ctx, region, prov)
		}
	case role != "":
		ext := j.option("awsRoleExternalId")
		return func(ctx context.Context) (string, int64, error) {
			return signer.GenerateAuthTokenFromRoleWithExternalId(ctx, region, role, session, ext)
		}
	case profile != "":
		return func(ctx context.Context) (string, int64, error) {
			return signer.GenerateAuthTokenFromProfile(ctx, region, profile)
		}
	default:
		return func(ctx context.Context) (string, int64, error) {
			return signer.GenerateAuthToken(ctx, region)
		}
	}
}

// mskTokenProvider signs MSK IAM tokens, reusing one until a minute before
// it expires, as sarama's AccessTokenProvider contract asks.
type mskTokenProvider struct {
	region string
	gen    func(context.Context) (string, int64, error)

	mu     sync.Mutex
	token  string
	expiry time.Time
}

// Token returns a signed MSK IAM token, reusing the current one while it is
// valid for more than a minute.
func (p *mskTokenProvider) Token() (*sarama.AccessToken, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.token != "" && time.Until(p.expiry) > time.Minute {
		return &sarama.AccessToken{Token: p.token}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, expMs, err := p.gen(ctx)
	if err != nil {
		return nil, asConfigError(fmt.Errorf("AWS_MSK_IAM: %w", err))
	}
	p.token, p.expiry = tok, time.UnixMilli(expMs)
	return &sarama.AccessToken{Token: tok}, nil
}

// gssapiConfig maps Krb5LoginModule options to sarama's Kerberos settings:
// keyTab and principal (user@REALM), or useTicketCache with ticketCache.
// serviceName (default kafka) stands for Java's sasl.kerberos.service.name;
// krb5.conf is read from KRB5_CONFIG or /etc/krb5.conf.
func gssapiConfig(j *jaasEntry) sarama.GSSAPIConfig {
	g := sarama.GSSAPIConfig{
		ServiceName:        j.option("serviceName"),
		KerberosConfigPath: os.Getenv("KRB5_CONFIG"),
		DisablePAFXFAST:    true,
	}
	if g.ServiceName == "" {
		g.ServiceName = "kafka"
	}
	if g.KerberosConfigPath == "" {
		g.KerberosConfigPath = "/etc/krb5.conf"
	}
	principal := j.option("principal")
	if at := strings.LastIndexByte(principal, '@'); at >= 0 {
		g.Username, g.Realm = principal[:at], principal[at+1:]
	} else {
		g.Username = principal
	}
	if strings.EqualFold(j.option("useTicketCache"), "true") && j.option("keyTab") == "" {
		g.AuthType = sarama.KRB5_CCACHE_AUTH
		g.CCachePath = j.option("ticketCache")
		if g.CCachePath == "" {
			g.CCachePath = strings.TrimPrefix(os.Getenv("KRB5CCNAME"), "FILE:")
		}
		return g
	}
	g.AuthType = sarama.KRB5_KEYTAB_AUTH
	g.KeyTabPath = j.option("keyTab")
	return g
}
