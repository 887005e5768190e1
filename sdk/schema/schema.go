// Package schema declares the configuration schema of a plugin type. The core
// turns it into an HCL decoding spec, so plugins never parse HCL: they receive
// their block's values as JSON with snake_case names.
package schema

// Type is the type of an attribute value.
type Type int

// The attribute types a schema can declare.
const (
	String Type = iota + 1
	Number
	Bool
	ListOfString
	MapOfString
	MapOfNumber
)

// Nesting says how often a nested block may appear.
type Nesting int

const (
	// Single allows the block at most once; it decodes to a JSON object (or null).
	Single Nesting = iota + 1
	// List allows the block any number of times; it decodes to a JSON array.
	List
)

// Attribute declares one attribute of a block.
type Attribute struct {
	// Name is the snake_case attribute name.
	Name string
	// Type is the value type.
	Type Type
	// Required makes a missing attribute a load-time error.
	Required bool
	// Description is shown by `sluice plugins` and in diagnostics.
	Description string
	// Enum lists the allowed values of a String attribute. A value holding EL
	// ({#...}) is checked by the plugin at request time instead.
	Enum []string
	// Default documents the value used when the attribute is absent; the
	// plugin applies it. Optional.
	Default any
	// EL says the value may hold EL templates evaluated per request or message.
	EL bool
}

// Block declares a nested block.
type Block struct {
	// Name is the block type name.
	Name string
	// Nesting is Single or List.
	Nesting Nesting
	// Schema is the block's own content.
	Schema Schema
	// Required makes a missing Single block a load-time error.
	Required bool
	// Description is shown by `sluice plugins`.
	Description string
}

// Schema is the content of a block: attributes and nested blocks.
type Schema struct {
	// Attributes are the block's attributes.
	Attributes []Attribute
	// Blocks are the block's nested blocks.
	Blocks []Block
}
