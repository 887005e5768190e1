package el

import "github.com/sluice-gw/sluice/sdk/javafmt"

// format renders an EL value as the text a configuration field receives
// (javafmt.Joined): lists are joined with "," because the Kafka connector
// splits comma strings back into lists (docs/behaviour.md 1.6), and integral
// numbers never use an exponent because they usually end up as topic names,
// ids or sizes.
func format(v any) string { return javafmt.Joined(v) }

// maxDepth stops self-referencing values (a map holding itself) from
// recursing forever.
const maxDepth = 32
