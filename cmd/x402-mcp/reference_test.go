package main

import (
	"reflect"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/tidwall/gjson"

	"github.com/x402-mcp/x402-mcp/config"
	"github.com/x402-mcp/x402-mcp/tools"
)

func commonAddr(s string) common.Address { return common.HexToAddress(s) }
func commonHash(s string) common.Hash    { return common.HexToHash(s) }

type toolRef struct {
	name  string
	props []string
}

// toolsList reads every tool's name and input properties from the code.
func toolsList() []toolRef {
	var out []toolRef
	for _, st := range tools.Tools(tools.Deps{}) {
		r := toolRef{name: st.Tool.Name}
		gjson.GetBytes(st.Tool.RawInputSchema, "properties").ForEach(func(k, _ gjson.Result) bool {
			r.props = append(r.props, k.String())
			return true
		})
		sort.Strings(r.props)
		out = append(out, r)
	}
	return out
}

// configKeys lists every key of the configuration file, as "table.key",
// "[[tokens]]" and the tokens' own keys.
func configKeys() []string {
	var out []string
	ft := reflect.TypeOf(config.File{})
	for i := 0; i < ft.NumField(); i++ {
		f := ft.Field(i)
		table := tomlName(f)
		et := f.Type
		if et.Kind() != reflect.Struct && et.Kind() != reflect.Slice {
			out = append(out, table)
			continue
		}
		if et.Kind() == reflect.Slice {
			out = append(out, "[["+table+"]]")
			et = et.Elem()
			for j := 0; j < et.NumField(); j++ {
				out = append(out, tomlName(et.Field(j)))
			}
			continue
		}
		for j := 0; j < et.NumField(); j++ {
			out = append(out, table+"."+tomlName(et.Field(j)))
		}
	}
	return out
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}
