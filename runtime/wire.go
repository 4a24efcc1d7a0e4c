package runtime

import "fmt"

// encodeError writes a service error: its message, then the identities of
// the registered error variables it matches (see RegisterErrors).
func encodeError(e *Encoder, err error) {
	e.String(errorMessage(err))
	ids := errorIdentities(err)
	e.Len(len(ids), false)
	for _, id := range ids {
		e.String(id)
	}
}

// decodeError reads what encodeError wrote.
func decodeError(d *Decoder, service, method string) (*RemoteError, error) {
	msg := d.String()
	n := d.Len(1)
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, d.String())
	}
	if err := d.Finish(); err != nil {
		return nil, err
	}
	return newRemoteError(service, method, msg, ids), nil
}

// errorMessage is err.Error(), or a description of its panic: an error
// type's Error method may panic (a nil *T returned as error, say).
func errorMessage(err error) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprintf("%T (its Error method panicked: %v)", err, r)
		}
	}()
	return err.Error()
}
