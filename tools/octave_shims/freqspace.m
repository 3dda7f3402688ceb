% MATLAB's freqspace (Signal/Image Processing Toolbox), missing from GNU Octave 7, as documented:
% for an m-by-n matrix, f1 = ((0:n-1) - floor(n/2)) * 2/n (along columns) and
% f2 = ((0:m-1) - floor(m/2)) * 2/m (along rows); with 'meshgrid', [f1, f2] = meshgrid(f1, f2).
% Used only to run VIFB's HMSD_GF code under Octave (tools/vifb_octave_b.m).
function [f1, f2] = freqspace(n, flag)
  if isscalar(n), n = [n n]; end
  f1 = ((0:n(2)-1) - floor(n(2)/2)) * (2 / n(2));
  f2 = ((0:n(1)-1) - floor(n(1)/2)) * (2 / n(1));
  if nargin > 1 && strcmp(flag, 'meshgrid')
    [f1, f2] = meshgrid(f1, f2);
  end
end
