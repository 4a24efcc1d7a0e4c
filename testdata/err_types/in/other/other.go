package other

type hidden struct{ X int }

// Wrapper exposes an unexported type through an exported field.
type Wrapper struct{ H hidden }
