package emit

import (
	"fmt"

	"github.com/molgen/molgen/internal/model"
)

// The package-level identifiers of a generated file. NewXClient and
// RegisterX are named by the model (the loader reserves them); every other
// name starts with model.ReservedPrefix ("molgen", which user code may not
// declare) and a prefix per kind (molgenDesc_, molgenClient_, molgenHandle_,
// molgenRequest_, molgenResponse_, molgenEnc_, molgenDec_), so that names
// of different kinds never collide.

// svcNames are one service's generated identifiers.
type svcNames struct {
	desc, client, newClient, register string
}

// namesOf returns the generated identifiers of s.
func namesOf(s *model.Service) svcNames {
	return svcNames{
		desc:      model.ReservedPrefix + "Desc_" + s.Iface,
		client:    model.ReservedPrefix + "Client_" + s.Iface,
		newClient: s.Ref().NewClientFunc(),
		register:  s.Ref().RegisterFunc(),
	}
}

// requestType names the type holding the arguments of s.m.
func requestType(s *model.Service, m *model.Method) string {
	return model.ReservedPrefix + "Request_" + s.Iface + "_" + m.Name
}

// responseType names the type holding the results of s.m.
func responseType(s *model.Service, m *model.Method) string {
	return model.ReservedPrefix + "Response_" + s.Iface + "_" + m.Name
}

// handlerName names the server-side function of s.m.
func handlerName(s *model.Service, m *model.Method) string {
	return model.ReservedPrefix + "Handle_" + s.Iface + "_" + m.Name
}

// encFunc and decFunc name the codec functions of a defined type whose
// name fragment (see codecNames) is frag.
func encFunc(frag string) string { return model.ReservedPrefix + "Enc_" + frag }

func decFunc(frag string) string { return model.ReservedPrefix + "Dec_" + frag }

// checkNames reports generated names that two declarations would share
// (possible only with underscores in names, e.g. A_B.C and A.B_C).
func checkNames(pkg *model.Package) error {
	seen := map[string]string{}
	for _, s := range pkg.Services {
		names := []string{namesOf(s).desc, namesOf(s).client, namesOf(s).newClient, namesOf(s).register}
		for _, m := range s.Methods {
			names = append(names, requestType(s, m), responseType(s, m), handlerName(s, m))
		}
		for _, n := range names {
			if prev, dup := seen[n]; dup {
				return fmt.Errorf("%s: services %s and %s would both generate %s: rename one of them (or a method)", s.Pos, prev, s.Iface, n)
			}
			seen[n] = s.Iface
		}
	}
	return nil
}
