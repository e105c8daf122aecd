variable "repositories" {
  description = "Repository names, one per component image, e.g. obskit-prod/loki."
  type        = list(string)
}

variable "keep_images" {
  description = "How many images each repository keeps (older ones expire)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
