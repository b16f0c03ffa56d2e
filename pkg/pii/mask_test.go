package pii

import "testing"

func TestMasks(t *testing.T) {
	tests := []struct {
		name string
		mask func(string) string
		in   string
		want string
	}{
		{"name two chars", MaskName, "张三", "张*"},
		{"name three chars", MaskName, "张小三", "张*三"},
		{"compound surname", MaskName, "欧阳小明", "欧**明"},
		{"one char", MaskName, "张", "*"},
		{"empty name", MaskName, "", ""},
		{"spaces trimmed", MaskName, " 李四 ", "李*"},
		{"minority name with middle dot", MaskName, "买买提·艾力", "买****力"},
		{"latin name", MaskName, "Anna", "A**a"},
		{"ID number", MaskIDNumber, "500114199001011234", "5001**********1234"},
		{"ID number with X", MaskIDNumber, "11010519491231002X", "1101**********002X"},
		{"legacy 15-digit ID", MaskIDNumber, "110105491231002", "1101*******1002"},
		{"short ID shown as stars only", MaskIDNumber, "12345678", "********"},
		{"empty ID", MaskIDNumber, "", ""},
		{"phone", MaskPhone, "13800000000", "138****0000"},
		{"phone with +86 and spaces", MaskPhone, "+86 139 1234 5678", "139****5678"},
		{"landline", MaskPhone, "023-79222222", "023*****2222"},
		{"short phone shown as stars only", MaskPhone, "12345", "*****"},
		{"empty phone", MaskPhone, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.mask(tt.in); got != tt.want {
				t.Errorf("mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
