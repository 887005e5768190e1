package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// securityCase is one way of reaching a secured listener of the real broker
// started by `make test-kafka` (scripts/kafka/start.sh).
type securityCase struct {
	name string
	// listener names the SLUICE_KAFKA_<listener> variable with the address.
	listener string
	// security is the HCL security block.
	security string
}

const (
	plainJAAS  = `org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-secret\";`
	scramJAAS  = `org.apache.kafka.common.security.scram.ScramLoginModule required username='alice' password='alice-secret';`
	badJAAS    = `org.apache.kafka.common.security.scram.ScramLoginModule required username='alice' password='wrong';`
	certsEnvTo = `{{env "SLUICE_KAFKA_CERTS"}}`
)

var securityCases = []securityCase{
	{"sasl-plaintext-plain", "SASL_PLAINTEXT", `security {
    protocol = "SASL_PLAINTEXT"
    sasl {
      mechanism   = "PLAIN"
      jaas_config = "` + plainJAAS + `"
    }
  }`},
	{"sasl-plaintext-scram-256", "SASL_PLAINTEXT", `security {
    protocol = "SASL_PLAINTEXT"
    sasl {
      mechanism   = "SCRAM-SHA-256"
      jaas_config = "` + scramJAAS + `"
    }
  }`},
	{"sasl-ssl-scram-512-pem-location", "SASL_SSL", `security {
    protocol = "SASL_SSL"
    sasl {
      mechanism   = "SCRAM-SHA-512"
      jaas_config = "` + scramJAAS + `"
    }
    ssl {
      truststore {
        type     = "PEM"
        location = "` + certsEnvTo + `/client.truststore.pem"
      }
    }
  }`},
	{"sasl-ssl-plain-jks", "SASL_SSL", `security {
    protocol = "SASL_SSL"
    sasl {
      mechanism   = "PLAIN"
      jaas_config = "` + plainJAAS + `"
    }
    ssl {
      truststore {
        type     = "JKS"
        location = "` + certsEnvTo + `/client.truststore.jks"
        password = "changeit"
      }
    }
  }`},
	{"ssl-pem-inline", "SSL", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type         = "PEM"
        certificates = file("` + certsEnvTo + `/client.truststore.pem")
      }
    }
  }`},
	{"ssl-pkcs12", "SSL", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type     = "PKCS12"
        location = "` + certsEnvTo + `/client.truststore.p12"
        password = "changeit"
      }
    }
  }`},
	{"mtls-pem-inline", "SSL_MTLS", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type         = "PEM"
        certificates = file("` + certsEnvTo + `/client.truststore.pem")
      }
      keystore {
        type              = "PEM"
        key               = file("` + certsEnvTo + `/client.key.pem")
        certificate_chain = file("` + certsEnvTo + `/client.chain.pem")
      }
    }
  }`},
	{"mtls-pem-location", "SSL_MTLS", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type     = "PEM"
        location = "` + certsEnvTo + `/client.truststore.pem"
      }
      keystore {
        type     = "PEM"
        location = "` + certsEnvTo + `/client.keystore.pem"
      }
    }
  }`},
	// An encrypted PKCS#8 key (PBES2: PBKDF2-HMAC-SHA256, AES-256-CBC) given
	// inline with its password.
	{"mtls-pem-encrypted-inline", "SSL_MTLS", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type         = "PEM"
        certificates = file("` + certsEnvTo + `/client.truststore.pem")
      }
      keystore {
        type              = "PEM"
        key               = file("` + certsEnvTo + `/client.key.encrypted.pem")
        key_password      = "changeit"
        certificate_chain = file("` + certsEnvTo + `/client.chain.pem")
      }
    }
  }`},
	// A file holding a key encrypted with PKCS#12 PBE (SHA1 + 3DES, the form
	// the Java client reads) and its chain.
	{"mtls-pem-encrypted-location", "SSL_MTLS", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type     = "PEM"
        location = "` + certsEnvTo + `/client.truststore.pem"
      }
      keystore {
        type         = "PEM"
        location     = "` + certsEnvTo + `/client.keystore.encrypted-3des.pem"
        key_password = "changeit"
      }
    }
  }`},
	{"mtls-jks", "SSL_MTLS", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type     = "JKS"
        location = "` + certsEnvTo + `/client.truststore.jks"
        password = "changeit"
      }
      keystore {
        type         = "JKS"
        location     = "` + certsEnvTo + `/client.keystore.jks"
        password     = "changeit"
        key_password = "changeit"
      }
    }
  }`},
	{"mtls-pkcs12", "SSL_MTLS", `security {
    protocol = "SSL"
    ssl {
      truststore {
        type     = "PKCS12"
        location = "` + certsEnvTo + `/client.truststore.p12"
        password = "changeit"
      }
      keystore {
        type     = "PKCS12"
        location = "` + certsEnvTo + `/client.keystore.p12"
        password = "changeit"
      }
    }
  }`},
}

// securityAPI is an API publishing to and consuming from its own topic
// through the given listener.
func securityAPI(name, listener, security string) string {
	return fmt.Sprintf(`
api "%[1]s" {
  context_path = "/%[1]s"
  entrypoint "http-post" {}
  entrypoint "http-get" {
    qos                        = "auto"
    messages_limit_count       = 1
    messages_limit_duration_ms = 10000
  }
  endpoint "kafka" "default" {
    bootstrap_servers = "{{env "SLUICE_KAFKA_%[2]s"}}"
    %[3]s
    producer {
      enabled = true
      topics  = ["sec-%[1]s"]
    }
    consumer {
      enabled           = true
      topics            = ["sec-%[1]s"]
      auto_offset_reset = "earliest"
    }
  }
}
`, name, listener, security)
}

func needRealKafka(t *testing.T) {
	t.Helper()
	if os.Getenv("SLUICE_KAFKA_SASL_PLAINTEXT") == "" {
		t.Skip("needs the secured listeners of a real Apache Kafka: run `make test-kafka`")
	}
}

// Every security protocol and SASL mechanism a local broker serves, with PEM,
// JKS and PKCS12 stores and mutual TLS: a POST lands and a GET reads it back.
func TestSecurityProtocolsConnect(t *testing.T) {
	needRealKafka(t)
	var apis strings.Builder
	topics := map[string]int{}
	for _, c := range securityCases {
		apis.WriteString(securityAPI(c.name, c.listener, c.security))
		topics["sec-"+c.name] = 1
	}
	g := StartGateway(t, apis.String(), topics)
	for _, c := range securityCases {
		t.Run(c.name, func(t *testing.T) {
			payload := "secured by " + c.name
			resp, body := post(t, g, "/"+c.name, payload, nil)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST: %d %s", resp.StatusCode, body)
			}
			status, body, page := getPage(t, g, "/"+c.name, uniqueID(c.name), nil)
			if status != 200 || len(page.Items) != 1 || page.Items[0].Content != payload {
				t.Fatalf("GET: %d %s", status, body)
			}
		})
	}
}

// A wrong password gives the configuration-invalid error within seconds, on
// publish and on subscribe, and never hangs the request.
func TestWrongPasswordFailsFast(t *testing.T) {
	needRealKafka(t)
	sec := `security {
    protocol = "SASL_PLAINTEXT"
    sasl {
      mechanism   = "SCRAM-SHA-512"
      jaas_config = "` + badJAAS + `"
    }
  }`
	g := StartGateway(t, securityAPI("badpass", "SASL_PLAINTEXT", sec), map[string]int{"sec-badpass": 1})
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, g.URL("/badpass"), strings.NewReader("x"))
	req.Header.Set("Accept", "application/json")
	resp, body := do(t, req)
	if resp.StatusCode != 500 || body != `{"message":"Endpoint configuration invalid","http_status_code":500}` {
		t.Fatalf("POST: %d %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("POST took %s", d)
	}
	start = time.Now()
	status, body, page := getPage(t, g, "/badpass", uniqueID("badpass"), nil)
	if status != 200 || page.Error == nil {
		t.Fatalf("GET: %d %s", status, body)
	}
	md, _ := page.Error["metadata"].(map[string]any)
	if md["key"] != "FAILURE_ENDPOINT_CONFIGURATION_INVALID" {
		t.Fatalf("GET error %v", page.Error)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("GET took %s", d)
	}
}
