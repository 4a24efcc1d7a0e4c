package sub

// Item is a foreign struct.
type Item struct {
	Name  string
	Price float32
}

// Code is a foreign named string.
type Code string
